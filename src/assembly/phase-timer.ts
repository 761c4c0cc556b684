/** Wall-clock laps of a multi-step job (for its log line and the benchmark), in milliseconds. */
export class PhaseTimer {
  private readonly started = performance.now();
  private last = this.started;
  /** Milliseconds per named phase, in the order they ended. */
  readonly laps: Record<string, number> = {};

  /** Ends the phase `name` (the time since the previous lap). */
  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }

  /** Milliseconds since the timer was made. */
  totalMs(): number {
    return Math.round((performance.now() - this.started) * 10) / 10;
  }
}
