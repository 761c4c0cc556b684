/**
 * The steps of a stop under way, by constant name (no data), for the log line of a stop that overran
 * (`src/main.ts`): each is listed from its start until it settles.
 */
export class PendingSteps {
  private readonly pending: Set<string>;
  private readonly prefix: string;

  /** An empty list; with `shared`, a view of another list ({@link within} makes those). */
  constructor(shared?: { readonly pending: Set<string>; readonly prefix: string }) {
    this.pending = shared?.pending ?? new Set();
    this.prefix = shared?.prefix ?? '';
  }

  /** The same list, for a part of the stop: the steps run through it are named `<prefix><name>` (`workers/worker:notify`). */
  within(prefix: string): PendingSteps {
    return new PendingSteps({ pending: this.pending, prefix: this.prefix + prefix });
  }

  /** Runs `work`, listed as `name` (with this list's prefix) until it settles. */
  async run(name: string, work: () => Promise<unknown>): Promise<void> {
    const full = this.prefix + name;
    this.pending.add(full);
    try {
      await work();
    } finally {
      this.pending.delete(full);
    }
  }

  /**
   * The steps under way now, in the order they started; a step with parts under way is named by those
   * parts only (`workers/worker:notify`, not also `workers`).
   */
  names(): string[] {
    const all = [...this.pending];
    return all.filter((name) => !all.some((other) => other.startsWith(`${name}/`)));
  }
}
