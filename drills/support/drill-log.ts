/**
 * What a drill reports: the steps it took (printed as they happen) and the counts it checked.
 * A drill never stops at the first bad count: it records every check, and the runner (or the
 * jest test) fails loudly, naming each count that was off.
 */

/** One checked count: what was expected, what was seen. */
export interface DrillCheck {
  readonly label: string;
  readonly expected: string;
  readonly actual: string;
  readonly ok: boolean;
}

/** The outcome of one drill run. */
export interface DrillResult {
  readonly name: string;
  readonly ok: boolean;
  readonly checks: readonly DrillCheck[];
  readonly durationMs: number;
  /** One line for the final table (what was done, the headline counts). */
  readonly summary: string;
  /** The error that stopped the drill before it finished, if any. */
  readonly error?: string;
}

/** Where drill lines go: stdout for `npm run drills`, nothing (or a buffer) under jest. */
export type DrillPrinter = (line: string) => void;

/** The printer of `npm run drills`. */
export const printToStdout: DrillPrinter = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Collects the steps and checks of one drill. */
export class DrillLog {
  private readonly checks: DrillCheck[] = [];
  private readonly started = Date.now();
  private summaryText = '';

  constructor(
    readonly name: string,
    private readonly print: DrillPrinter = printToStdout,
  ) {}

  /** Prints what the drill is doing now. */
  step(message: string): void {
    this.print(`  [${this.name}] ${this.elapsed()} ${message}`);
  }

  /** Records a check of `actual` against `expected` (compared as JSON); prints it. */
  equal<T>(label: string, actual: T, expected: T): boolean {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    return this.record(label, a === e, abbreviate(a), abbreviate(e));
  }

  /** Records that `actual` is at least `min`. */
  atLeast(label: string, actual: number, min: number): boolean {
    return this.record(label, actual >= min, String(actual), `≥ ${min}`);
  }

  /** Records a yes/no fact, with what was seen when it does not hold. */
  holds(label: string, ok: boolean, seen = 'no'): boolean {
    return this.record(label, ok, ok ? 'yes' : abbreviate(seen || 'no'), 'yes');
  }

  /** The headline of the drill for the final table. */
  summarize(text: string): void {
    this.summaryText = text;
  }

  /** The result, with `error` when the drill threw before finishing. */
  result(error?: unknown): DrillResult {
    const message = error === undefined ? undefined : error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (message) this.print(`  [${this.name}] FAILED: ${message}`);
    return {
      name: this.name,
      ok: message === undefined && this.checks.length > 0 && this.checks.every((c) => c.ok),
      checks: [...this.checks],
      durationMs: Date.now() - this.started,
      summary: this.summaryText,
      ...(message ? { error: message } : {}),
    };
  }

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1).padStart(5)}s`;
  }

  private record(label: string, ok: boolean, actual: string, expected: string): boolean {
    this.checks.push({ label, expected, actual, ok });
    this.print(`  [${this.name}] ${ok ? 'ok  ' : 'FAIL'} ${label}: ${actual}${ok ? '' : ` (expected ${expected})`}`);
    return ok;
  }
}

function abbreviate(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** Runs a drill body with its log, turning a throw into a failed result. */
export async function runDrill(log: DrillLog, body: () => Promise<void>): Promise<DrillResult> {
  try {
    await body();
    return log.result();
  } catch (err) {
    return log.result(err);
  }
}

/** The failed checks and error of a result, one line each (for jest and the runner). */
export function failuresOf(result: DrillResult): string[] {
  return [
    ...result.checks.filter((c) => !c.ok).map((c) => `${result.name}: ${c.label}: got ${c.actual}, expected ${c.expected}`),
    ...(result.error ? [`${result.name}: ${result.error.split('\n')[0] ?? ''}`] : []),
    ...(result.checks.length === 0 && !result.error ? [`${result.name}: checked nothing`] : []),
  ];
}
