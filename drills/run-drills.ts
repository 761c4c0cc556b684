/**
 * `npm run drills`: the fault drills, one after another, each printing what it does and the counts
 * it checks, then one table. Exits 1, naming every count that was off, when any drill fails.
 *
 *     npm run drills                      # all of them (a few minutes)
 *     npm run drills -- --only kill,ssrf  # some of them
 *
 * Needs the machine's PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432)
 * and Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379) for the drill databases and queues;
 * the restart drills start and restart their own redis-server and PostgreSQL cluster
 * (`redis-server` on PATH, PostgreSQL binaries in DRILL_PG_BIN, default /usr/lib/postgresql/15/bin).
 */
import { badInputDrill } from './bad-input';
import { deliveryDrill } from './delivery';
import { drillTable } from './drill-table';
import { killWorkerDrill } from './kill-worker';
import { restartPostgresDrill } from './restart-postgres';
import { restartRedisDrill } from './restart-redis';
import { sandboxFaultsDrill } from './sandbox-faults';
import { ssrfDrill } from './ssrf';
import type { DrillResult } from './support/drill-log';

/** Every drill of the full run, by the name `--only` takes. */
export const FULL_DRILLS: Readonly<Record<string, () => Promise<DrillResult>>> = {
  kill: () => killWorkerDrill({ killPoints: 20, seed: 20261128 }),
  redis: () => restartRedisDrill({ downMs: 1500 }),
  'redis-lost': () => restartRedisDrill({ downMs: 1500, lose: true }),
  postgres: () => restartPostgresDrill(),
  'faults-1': () => sandboxFaultsDrill({ rate: 0.04, seed: 1 }),
  'faults-2': () => sandboxFaultsDrill({ rate: 0.04, seed: 2 }),
  'faults-3': () => sandboxFaultsDrill({ rate: 0.06, seed: 3 }),
  'bad-input': () => badInputDrill({ bodiesPerRoute: Number(process.env.DRILL_BODIES_PER_ROUTE ?? 1000), valuesPerQueryKey: 200, seed: 8 }),
  delivery: () => deliveryDrill(),
  ssrf: () => ssrfDrill(),
};

function selected(argv: readonly string[]): string[] {
  const at = argv.indexOf('--only');
  const names = Object.keys(FULL_DRILLS);
  if (at < 0) return names;
  const wanted = (argv[at + 1] ?? '').split(',').filter(Boolean);
  const unknown = wanted.filter((w) => !names.some((n) => n === w || n.startsWith(`${w}-`)));
  if (unknown.length > 0) throw new Error(`unknown drill(s) ${unknown.join(', ')}; drills: ${names.join(', ')}`);
  return names.filter((n) => wanted.some((w) => n === w || n.startsWith(`${w}-`)));
}

async function main(): Promise<void> {
  const names = selected(process.argv.slice(2));
  const results: DrillResult[] = [];
  const started = Date.now();
  for (const name of names) {
    process.stdout.write(`\n▶ ${name}\n`);
    const drill = FULL_DRILLS[name];
    if (drill) results.push(await drill());
  }
  process.stdout.write(`\nFault drills (${((Date.now() - started) / 1000).toFixed(0)} s)\n\n${drillTable(results)}\n`);
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    process.stderr.write(`\n${failed.length} of ${results.length} drills FAILED: ${failed.map((r) => r.name).join(', ')}\n`);
    process.exit(1);
  }
  process.stdout.write(`\nAll ${results.length} drills passed.\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`drills: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(2);
});
