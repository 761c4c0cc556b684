/** Live per-source progress bars for the demo's record pull (redrawn in place on a terminal). */

export interface SourceProgressLine {
  readonly name: string;
  readonly state: string;
  readonly resources: number;
  readonly pages: number;
  readonly queriesDone: number;
  readonly queries: number;
  readonly attachmentsFetched: number;
  readonly attachmentsFound: number;
  readonly retries: number;
}

const WIDTH = 24;

function bar(done: number, total: number): string {
  const filled = total === 0 ? WIDTH : Math.round((WIDTH * done) / total);
  return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}]`;
}

function render(line: SourceProgressLine): string {
  return (
    `  ${line.name.padEnd(14)} ${bar(line.queriesDone, line.queries)} ${String(line.queriesDone).padStart(2)}/${line.queries} queries  ` +
    `${String(line.resources).padStart(5)} resources, ${line.pages} pages, attachments ${line.attachmentsFetched}/${line.attachmentsFound}` +
    `${line.retries > 0 ? `, ${line.retries} retries` : ''}  ${line.state}`
  );
}

/** Draws the bars; on a terminal each update replaces the previous one, elsewhere a line is printed when a source changes state. */
export class ProgressBars {
  private drawn = 0;
  private lastStates = new Map<string, string>();

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  update(lines: readonly SourceProgressLine[]): void {
    if (this.out.isTTY) {
      if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
      for (const line of lines) this.out.write(`\x1b[2K${render(line)}\n`);
      this.drawn = lines.length;
      return;
    }
    for (const line of lines) {
      if (this.lastStates.get(line.name) !== line.state) {
        this.lastStates.set(line.name, line.state);
        this.out.write(`${render(line)}\n`);
      }
    }
  }
}
