/**
 * Sandbox EHR serving benchmark (`npm run bench:sandbox`): one large patient (`--resources`
 * Observations, default 50,000) paged at `_count=500` to its end, in this process (client and server
 * share the one Node thread, as in the tests). Three passes, each checked to return every resource:
 * - **serving, first search**: a raw `node:http` client that only finds the next link (the index
 *   build and the search snapshot included, cold connection);
 * - **serving, warm**: the same again (every page after the first is sliced from the snapshot);
 * - **end to end**: `fetch` + `JSON.parse` of every page (a minimal real client).
 * Pages/s and resources/s of each; the warm serving pass is the baseline of the end-to-end one.
 * The figures of `src/sandbox/README.md` (Throughput) come from here.
 *
 * Flags: --resources N (a multiple of 500, default 50000).
 */
import { Agent } from 'node:http';
import { startSandboxServer } from '../src/sandbox';
import { largePatient, largePatientSearchUrl, pageThroughParsed, pageThroughRaw } from '../src/sandbox/paging/large-patient';
import { fmtInt, fmtRatio, machineInfo, table, writeResult, type BenchFigure } from './support';

const PAGE = 500;

interface Pass {
  readonly resources: number;
  readonly pages: number;
  readonly seconds: number;
}

function parseArgs(argv: readonly string[]): { resources: number } {
  const args = { resources: 50_000 };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--resources') args.resources = Number(argv[i + 1]);
    else throw new Error(`Unknown flag ${argv[i] ?? ''}`);
  }
  if (!Number.isInteger(args.resources) || args.resources < PAGE || args.resources % PAGE !== 0) throw new Error(`--resources must be a multiple of ${PAGE}`);
  return args;
}

/** `pass` timed. */
async function timed(pass: () => Promise<{ resources: number; pages: number }>): Promise<Pass> {
  const started = performance.now();
  const { resources, pages } = await pass();
  return { resources, pages, seconds: (performance.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const { resources: total } = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const server = await startSandboxServer({ name: 'bench', auth: 'none' });
  try {
    const resources = largePatient(total);
    const loadStarted = performance.now();
    await server.load(resources);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const first = largePatientSearchUrl(server.baseUrl, PAGE);
    const agent = new Agent({ keepAlive: true });
    const cold = await timed(() => pageThroughRaw(first, agent));
    const warm = await timed(() => pageThroughRaw(first, agent));
    agent.destroy();
    const parsed = await timed(async () => {
      const { ids, pages } = await pageThroughParsed(first);
      return { resources: ids.length, pages };
    });
    for (const [name, pass] of [['first search', cold], ['warm', warm], ['end to end', parsed]] as const) {
      if (pass.resources !== total || pass.pages !== total / PAGE) throw new Error(`${name}: ${pass.resources} resources in ${pass.pages} pages, expected ${total} in ${total / PAGE}`);
    }
    const perSecond = (p: Pass): number => p.resources / p.seconds;
    const row = (label: string, p: Pass): string[] => [label, fmtInt(p.pages), `${p.seconds.toFixed(2)} s`, fmtInt(p.pages / p.seconds), fmtInt(perSecond(p)), fmtRatio(perSecond(p) / perSecond(warm))];
    console.log(`\nSandbox EHR, one patient of ${fmtInt(total)} Observations at _count=${PAGE} (loaded in ${loadSeconds.toFixed(2)} s); client and server in one Node thread:`);
    console.log(
      table(
        ['pass', 'pages', 'time', 'pages/s', 'res/s', 'vs warm serving'],
        [row('serving, first search (index build + snapshot)', cold), row('serving, warm', warm), row('end to end (fetch + JSON.parse)', parsed)],
      ),
    );
    const figures: BenchFigure[] = [
      { figure: 'serving, warm snapshot', unit: 'res/s', measured: perSecond(warm) },
      { figure: 'serving, first search', unit: 'res/s', measured: perSecond(cold), baseline: perSecond(warm), baselineName: 'warm', ratio: perSecond(cold) / perSecond(warm) },
      { figure: 'end to end (fetch + JSON.parse)', unit: 'res/s', measured: perSecond(parsed), baseline: perSecond(warm), baselineName: 'warm', ratio: perSecond(parsed) / perSecond(warm) },
    ];
    const written = writeResult({ bench: 'sandbox', startedAt, durationMs: Date.now() - t0, machine: machineInfo(), pass: true, figures, details: { resources: total, page: PAGE, loadSeconds, cold, warm, parsed } });
    console.log(`→ ${written.latest}`);
  } finally {
    await server.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
