import { failuresOf, type DrillResult } from './support/drill-log';

/** The final table of `npm run drills`: one row per drill, then every failed check spelled out. */
export function drillTable(results: readonly DrillResult[]): string {
  const headers = ['drill', 'result', 'checks', 'time', 'what was checked'];
  const rows = results.map((r) => [
    r.name,
    r.ok ? 'PASS' : 'FAIL',
    `${r.checks.filter((c) => c.ok).length}/${r.checks.length}`,
    `${(r.durationMs / 1000).toFixed(1)} s`,
    r.summary || (r.error ? `stopped: ${r.error.split('\n')[0] ?? ''}` : ''),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  const failures = results.flatMap(failuresOf);
  return [
    line(headers),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    ...(failures.length > 0 ? ['', 'FAILED CHECKS:', ...failures.map((f) => `  - ${f}`)] : []),
  ].join('\n');
}
