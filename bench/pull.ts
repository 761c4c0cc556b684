/**
 * Record-pull benchmark (`npm run bench:pull`).
 *
 * One sandbox FHIR server (auth `none`, offset paging, in a child process: bench/sandbox-process.ts) is loaded once with one
 * patient of `--resources` (default 50,000) generated resources. Then, at 0 ms and at 20 ms added
 * latency per request:
 *
 * - **pipeline**: the real service in-process (role `all`: HTTP API + BullMQ workers, its own fresh
 *   PostgreSQL database created and dropped here, its own Redis queue prefix), driven through the
 *   API like a case manager would: `POST /api/cases/:id/pulls`, completion watched on the pull's row
 *   (a cheap query every 20 ms), then `GET …/pulls/:pullId` for its totals. Timed from the POST to the
 *   pull's `finishedAt`. Resources are counted from the pull's totals and checked against the raw
 *   store and against what the sandbox was loaded with. The case assembly the pull's parent job runs
 *   afterwards is waited for and reported apart (it is not part of the pull).
 * - **naive loop**: fhir-kit-client `search` + `nextPage` per type, type after type, sequential, no
 *   storage, at `_count=100` (the comparison baseline) and at `_count=500` (same page size as ours).
 *
 * Each phase samples `process.memoryUsage().rss` every 50 ms (this process: the service and the
 * naive client; the sandbox holds the 50k resources and its page caches in its own process) and
 * reports each phase's peak and delta over the RSS just before it.
 *
 * Flags: --resources N, --latencies 0,20, --no-warmup, --pipeline-only, --concurrency N (PULL_CONCURRENCY),
 *        --profile-pipeline DIR (a .cpuprofile of each timed pipeline phase, this process only).
 * Env: TEST_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
 *      TEST_REDIS_URL (default redis://127.0.0.1:6379).
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as FhirKitClientModule from 'fhir-kit-client' with { 'resolution-mode': 'import' };
import { PULL_RESOURCE_TYPES } from '../src/pull/pull-plan';
import { startRemoteSandbox, type RemoteSandbox } from './remote-sandbox';
import type { LoadedSandbox } from './sandbox-process';
import type { RunningService } from '../src/service';
import { BENCH_INTAKE } from './assemble-seed';
import { startBenchService, type BenchService } from './bench-service';
import {
  cpuTimer,
  diffCpu,
  hostBusyCpu,
  diffPidCpu,
  pidCpu,
  pidsNamed,
  threadCpu,
  fmtInt,
  fmtMb,
  fmtRatio,
  forceGc,
  machineInfo,
  MB,
  processMaxRss,
  RssSampler,
  table,
  writeResult,
  type BenchFigure,
} from './support';

const BENCH = 'pull';
const TARGET_RES_PER_S_AT_0MS = 20_000;
const TARGET_RATIO_AT_20MS = 3;
const TARGET_PEAK_RSS_MB = 400;
/** The baseline's page size: a common client default. */
const NAIVE_COUNT = 100;
/** Same page size as the pipeline asks for (PULL_PAGE_SIZE). */
const NAIVE_COUNT_LARGE = 500;
/** Completion check of a running pull (one indexed row; see pipelinePull). */
const POLL_MS = 20;
const ASSEMBLY_POLL_MS = 100;
const ASSEMBLY_TIMEOUT_MS = 180_000;
const PULL_TIMEOUT_MS = 120_000;
/** `$everything` also returns what the clinical resources reference; these come along (see pull-plan.ts). */
const COMPANION_TYPES = ['Binary', 'Endpoint', 'Medication'] as const;

interface Args {
  resources: number;
  latencies: number[];
  warmup: boolean;
  concurrency?: number;
  /** Write a CPU profile of each timed pipeline phase into this directory. */
  profileDir?: string;
  /** Skip the naive loops (profiling, experiments). */
  pipelineOnly: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { resources: 50_000, latencies: [0, 20], warmup: true, pipelineOnly: false };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--no-warmup' || flag === '--pipeline-only') {
      if (flag === '--no-warmup') args.warmup = false;
      else args.pipelineOnly = true;
      continue;
    }
    if (value === undefined) throw new Error(`${flag ?? ''} needs a value`);
    i += 1;
    if (flag === '--resources') args.resources = Number(value);
    else if (flag === '--latencies') args.latencies = value.split(',').map(Number);
    else if (flag === '--concurrency') args.concurrency = Number(value);
    else if (flag === '--profile-pipeline') args.profileDir = path.resolve(value);
    else throw new Error(`Unknown flag ${flag ?? ''}`);
  }
  if (!Number.isInteger(args.resources) || args.resources < 100) throw new Error('--resources must be an integer ≥ 100');
  if (args.latencies.some((l) => !Number.isFinite(l) || l < 0)) throw new Error('--latencies must be numbers ≥ 0');
  return args;
}

const log = (line: string): void => {
  process.stderr.write(`[bench:pull ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

class BenchFailure extends Error {}
function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new BenchFailure(`CHECK FAILED: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Infrastructure: a fresh database, the service, the sandbox
// ---------------------------------------------------------------------------------------------

interface Infra {
  readonly bench: BenchService;
  readonly service: RunningService;
  readonly url: string;
  readonly pullConcurrency: number;
  readonly poolSize: number;
}

async function startInfra(args: Args): Promise<Infra> {
  const bench = await startBenchService('pull', args.concurrency ? { PULL_CONCURRENCY: String(args.concurrency) } : {});
  return { bench, service: bench.service, url: bench.url, pullConcurrency: bench.config.pullConcurrency, poolSize: bench.config.databasePoolSize };
}

async function stopInfra(infra: Infra): Promise<void> {
  await infra.bench.stop().catch((err: unknown) => log(`service stop failed: ${String(err)}`));
}

// ---------------------------------------------------------------------------------------------
// API client
// ---------------------------------------------------------------------------------------------

class Api {
  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, route: string, body?: unknown, expectStatus?: number): Promise<T> {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (expectStatus !== undefined && res.status !== expectStatus) {
      throw new BenchFailure(`${method} ${route}: expected ${expectStatus}, got ${res.status}: ${text.slice(0, 500)}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

interface PullView {
  state: string;
  finishedAt: string | null;
  totals: { resources: number; pages: number; tasks: number; tasksComplete: number; attachmentsFound: number; attachmentsFetched: number; retries: number };
  sources: { resourceTypes: { query: string; state: string; pages: number; resources: number; byType: Record<string, number>; lastError: string | null }[] }[];
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

interface PhaseResult {
  readonly phase: string;
  readonly latencyMs: number;
  readonly resources: number;
  readonly pages: number;
  readonly ms: number;
  readonly resPerS: number;
  readonly rssBeforeBytes: number;
  readonly rssPeakBytes: number;
  readonly rssDeltaBytes: number;
  readonly rssSamples: number;
  /** CPU of this Node process (service + client), µs per resource. */
  readonly nodeCpuUsPerResource: number;
  /** CPU µs per resource: this process by thread group, and the local postgres / redis-server processes. */
  readonly cpuUsPerResource: Record<string, number>;
  /** Cores busy with other work on the host during the phase (anything but this process, postgres and redis): noise. */
  readonly otherLoadCores: number;
  readonly extra?: Record<string, unknown>;
}

/**
 * The local processes a phase's CPU is charged to besides this one: the Postgres backends of the
 * bench database plus Postgres' own background processes (WAL writer, checkpointer…), and Redis.
 * Other databases' backends (other work on a shared machine) are left out, and show as other load.
 */
type ProcessSet = () => Promise<{ postgres: number[]; redis: number[]; sandbox: number[] }>;
let localProcesses: ProcessSet = async () => ({ postgres: [], redis: [], sandbox: [] });

async function measure(phase: string, latencyMs: number, run: () => Promise<{ resources: number; pages: number; ms?: number; extra?: Record<string, unknown> }>): Promise<PhaseResult> {
  forceGc();
  const rssBefore = process.memoryUsage.rss();
  const before = await localProcesses();
  const sampler = new RssSampler(50).start();
  const cpu = cpuTimer();
  const threads0 = threadCpu();
  const pg0 = pidCpu(before.postgres);
  const redis0 = pidCpu(before.redis);
  const sandbox0 = pidCpu(before.sandbox);
  const host0 = hostBusyCpu();
  const t0 = performance.now();
  const out = await run();
  const wall = performance.now() - t0;
  const cpuMs = cpu.stop();
  const threads = diffCpu(threadCpu(), threads0);
  const host = hostBusyCpu() - host0;
  const after = await localProcesses();
  const pgMs = diffPidCpu(pidCpu(new Set([...before.postgres, ...after.postgres])), pg0);
  const redisMs = diffPidCpu(pidCpu(new Set([...before.redis, ...after.redis])), redis0);
  const sandboxMs = diffPidCpu(pidCpu(before.sandbox), sandbox0);
  const { peakBytes, samples } = sampler.stop();
  const ms = out.ms ?? wall;
  const perRes = (v: number): number => Number(((v * 1000) / Math.max(1, out.resources)).toFixed(1));
  const cpuUsPerResource: Record<string, number> = {};
  for (const [k, v] of Object.entries(threads)) if (v > 0) cpuUsPerResource[`node:${k}`] = perRes(v);
  cpuUsPerResource.postgres = perRes(pgMs);
  cpuUsPerResource.redis = perRes(redisMs);
  cpuUsPerResource.sandbox = perRes(sandboxMs);
  const threadsTotal = Object.values(threads).reduce((a, b) => a + b, 0);
  // CPU that neither this process nor its Postgres backends nor Redis used: other work on the machine (noise).
  const otherCores = Math.max(0, host - threadsTotal - pgMs - redisMs - sandboxMs) / wall;
  const result: PhaseResult = {
    phase,
    latencyMs,
    resources: out.resources,
    pages: out.pages,
    ms,
    resPerS: out.resources / (ms / 1000),
    rssBeforeBytes: rssBefore,
    rssPeakBytes: peakBytes,
    rssDeltaBytes: peakBytes - rssBefore,
    rssSamples: samples,
    nodeCpuUsPerResource: (cpuMs * 1000) / Math.max(1, out.resources),
    cpuUsPerResource,
    otherLoadCores: Number(otherCores.toFixed(2)),
    extra: out.extra,
  };
  log(
    `${phase} @${latencyMs} ms: ${fmtInt(result.resources)} resources in ${(ms / 1000).toFixed(2)} s = ${fmtInt(result.resPerS)} res/s, ` +
      `peak RSS ${fmtMb(peakBytes)} (+${fmtMb(result.rssDeltaBytes)}), node CPU ${result.nodeCpuUsPerResource.toFixed(1)} µs/res ${JSON.stringify(cpuUsPerResource)}, other load ${result.otherLoadCores} cores`,
  );
  return result;
}

type FhirKit = typeof FhirKitClientModule;
type KitBundle = { resourceType: string; entry?: { resource?: { resourceType?: string }; search?: { mode?: string } }[]; link?: { relation: string; url: string }[] };

/** The naive baseline: one type after another, `search` then `nextPage` until there is no `next` link; nothing stored. */
async function naiveLoop(kit: FhirKit, baseUrl: string, patientId: string, count: number, expected: Record<string, number>) {
  const client = new kit.Client({ baseUrl });
  const got: Record<string, number> = {};
  let pages = 0;
  for (const type of PULL_RESOURCE_TYPES) {
    const searchParams: Record<string, string | number> = type === 'Patient' ? { _id: patientId, _count: count } : { patient: `Patient/${patientId}`, _count: count };
    let bundle = (await client.search({ resourceType: type, searchParams })) as unknown as KitBundle | undefined;
    while (bundle) {
      pages += 1;
      for (const e of bundle.entry ?? []) {
        if (e.search?.mode === 'outcome') continue;
        const t = e.resource?.resourceType ?? '?';
        got[t] = (got[t] ?? 0) + 1;
      }
      bundle = (await client.nextPage({ bundle: bundle as never })) as unknown as KitBundle | undefined;
    }
  }
  for (const type of PULL_RESOURCE_TYPES) {
    check((got[type] ?? 0) === (expected[type] ?? 0), `naive loop (_count=${count}) got ${got[type] ?? 0} ${type}, the sandbox holds ${expected[type] ?? 0}`);
  }
  const resources = Object.values(got).reduce((a, b) => a + b, 0);
  return { resources, pages };
}

interface PipelineCtx {
  readonly api: Api;
  readonly infra: Infra;
  readonly endpointId: string;
  readonly loaded: LoadedSandbox;
}

/** Expected per-type counts of a full pull: every loaded resource of the pulled types and their companions. */
function expectedPull(loaded: LoadedSandbox): Record<string, number> {
  const out: Record<string, number> = {};
  for (const type of [...PULL_RESOURCE_TYPES, ...COMPANION_TYPES]) if (loaded.counts[type]) out[type] = loaded.counts[type];
  return out;
}

/** Opens a fresh case with one source (so each pull stores into an empty slice of the raw store). */
async function prepareCase(ctx: PipelineCtx): Promise<string> {
  const opened = await ctx.api.call<{ id: string; status: string }>('POST', '/api/cases', BENCH_INTAKE, 201);
  check(opened.status === 'submitted', `the bench case opened as ${opened.status}, expected submitted`);
  const source = await ctx.api.call<{ id: string; state: string }>('POST', `/api/cases/${opened.id}/sources`, { endpointId: ctx.endpointId, patient: { id: ctx.loaded.patientId } }, 201);
  // The loaded patient is not the bench intake's child: the case manager chooses it, as after a review.
  if (source.state !== 'resolved') {
    await ctx.api.call('POST', `/api/cases/${opened.id}/sources/${source.id}/patient`, { patientId: ctx.loaded.patientId }, 200);
  }
  return opened.id;
}

/**
 * Starts a pull through the API and waits for it to end. Completion is watched with a cheap query
 * on the pull's row every 20 ms (the API's progress view runs several queries, which at this rate
 * would cost the pipeline CPU); the API's view is read once at the end. The time is the pull's
 * `finishedAt` (stamped by Postgres, same host clock) minus the moment before the POST.
 */
async function pipelinePull(ctx: PipelineCtx, caseId: string) {
  const db = ctx.infra.service.db;
  const wallStart = Date.now();
  const t0 = performance.now();
  const { pullId } = await ctx.api.call<{ pullId: string }>('POST', `/api/cases/${caseId}/pulls`, {}, 202);
  for (;;) {
    const { rows } = await db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId]);
    if (['complete', 'partial', 'failed'].includes(rows[0]?.state ?? '')) break;
    if (performance.now() - t0 > PULL_TIMEOUT_MS) throw new BenchFailure(`pull ${pullId} not finished after ${PULL_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  const observedMs = performance.now() - t0;
  const view = await ctx.api.call<PullView>('GET', `/api/cases/${caseId}/pulls/${pullId}`, undefined, 200);
  const finished = view.finishedAt ? Date.parse(view.finishedAt) - wallStart : NaN;
  const ms = Number.isFinite(finished) && finished > 0 && finished <= observedMs + 5 ? finished : observedMs;
  return { resources: view.totals.resources, pages: view.totals.pages, ms, extra: { pullId, observedMs: Math.round(observedMs) }, view };
}

/** What a finished pull must show: complete, every loaded resource, each once in the raw store, every page kept. Fails loudly. */
async function verifyPull(ctx: PipelineCtx, caseId: string, pullId: string, view: PullView): Promise<Record<string, unknown>> {
  const tasks = view.sources.flatMap((s) => s.resourceTypes);
  check(view.state === 'complete', `pull ended ${view.state}: ${JSON.stringify(tasks.filter((t) => t.state !== 'complete'))}`);
  const byType: Record<string, number> = {};
  for (const t of tasks) for (const [type, n] of Object.entries(t.byType)) byType[type] = (byType[type] ?? 0) + n;
  const expected = expectedPull(ctx.loaded);
  for (const type of new Set([...Object.keys(expected), ...Object.keys(byType)])) {
    check((byType[type] ?? 0) === (expected[type] ?? 0), `pipeline pulled ${byType[type] ?? 0} ${type}, the sandbox holds ${expected[type] ?? 0}`);
  }
  const expectedTotal = Object.values(expected).reduce((a, b) => a + b, 0);
  check(view.totals.resources === expectedTotal, `pull totals say ${view.totals.resources} resources, expected ${expectedTotal}`);
  const db = ctx.infra.service.db;
  const raw = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM raw_resources WHERE case_id = $1', [caseId]);
  check(raw.rows[0]?.n === view.totals.resources, `raw_resources holds ${raw.rows[0]?.n ?? 0} rows for the case, the pull's totals say ${view.totals.resources}`);
  const pages = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id WHERE t.pull_id = $1',
    [pullId],
  );
  check(pages.rows[0]?.n === view.totals.pages, `raw_pages holds ${pages.rows[0]?.n ?? 0} pages for the pull, the totals say ${view.totals.pages}`);
  // Where the time went: each task's span from the pull's start, and when its attachments were done.
  const spans = await db.query<{ query_key: string; pages: number; start_ms: number; end_ms: number; attachments_done_ms: number | null }>(
    `SELECT t.query_key, t.pages,
            (extract(epoch FROM t.started_at - p.created_at) * 1000)::int AS start_ms,
            (extract(epoch FROM t.finished_at - p.created_at) * 1000)::int AS end_ms,
            (SELECT (extract(epoch FROM max(a.updated_at) - p.created_at) * 1000)::int FROM attachments a WHERE a.task_id = t.id) AS attachments_done_ms
       FROM pull_tasks t JOIN pulls p ON p.id = t.pull_id WHERE t.pull_id = $1 ORDER BY t.finished_at DESC LIMIT 4`,
    [pullId],
  );
  log(`slowest tasks: ${spans.rows.map((r) => `${r.query_key} ${r.pages} pages ${r.start_ms}–${r.end_ms} ms${r.attachments_done_ms !== null ? ` (attachments done ${r.attachments_done_ms} ms)` : ''}`).join('; ')}`);
  return {
    tasks: view.totals.tasks,
    retries: view.totals.retries,
    attachmentsFound: view.totals.attachmentsFound,
    attachmentsFetched: view.totals.attachmentsFetched,
    rawResources: raw.rows[0]?.n,
    largestTask: tasks.reduce((a, t) => (t.resources > a.resources ? t : a), tasks[0] ?? { query: '', resources: 0, pages: 0 }).query,
  };
}

/**
 * The pull's parent job goes on to assemble a new version of the case bundle from the raw store
 * (queues/assemble-case.ts). That is not part of the pull's figures, but it runs right after, in
 * this process: wait for it, so it does not overlap the next phase, and report it on its own.
 * Its time runs from the pull's finishedAt to the bundle row's created_at (both Postgres clocks).
 */
async function assemblyAfterPull(ctx: PipelineCtx, caseId: string, pullId: string, finishedAt: string | null, resources: number) {
  const db = ctx.infra.service.db;
  const t0 = performance.now();
  for (;;) {
    const { rows } = await db.query<{ created_at: Date; version: number }>(
      'SELECT created_at, version FROM case_bundles WHERE case_id = $1 AND trigger LIKE $2 ORDER BY version DESC LIMIT 1',
      [caseId, `pull:${pullId}:%`],
    );
    const row = rows[0];
    if (row) {
      const fromFinish = finishedAt ? row.created_at.getTime() - Date.parse(finishedAt) : NaN;
      return { resources, pages: 0, ms: Number.isFinite(fromFinish) && fromFinish > 0 ? fromFinish : performance.now() - t0, extra: { bundleVersion: row.version } };
    }
    if (performance.now() - t0 > ASSEMBLY_TIMEOUT_MS) throw new BenchFailure(`case ${caseId}: no bundle assembled ${ASSEMBLY_TIMEOUT_MS} ms after pull ${pullId}`);
    await new Promise((resolve) => setTimeout(resolve, ASSEMBLY_POLL_MS));
  }
}

/**
 * One pull as a phase, then the case assembly its parent job runs (reported apart, so it overlaps
 * nothing), then the checks of what was stored.
 */
async function pullPhase(
  ctx: PipelineCtx,
  phase: string,
  latency: number,
  caseId: string,
  profileFile?: string,
): Promise<{ pull: PhaseResult; assembly: PhaseResult }> {
  let pulled: Awaited<ReturnType<typeof pipelinePull>> | undefined;
  const profiler = profileFile ? await startProfiler() : undefined;
  const pull = await measure(phase, latency, async () => (pulled = await pipelinePull(ctx, caseId)));
  if (profiler && profileFile) log(`CPU profile: ${await profiler.stop(profileFile)}`);
  if (!pulled) throw new BenchFailure('no pull result');
  const { pullId } = pulled.extra;
  const { view } = pulled;
  const assembly = await measure(`${phase}: case assembly after it`, latency, () => assemblyAfterPull(ctx, caseId, pullId, view.finishedAt, view.totals.resources));
  const checks = await verifyPull(ctx, caseId, pullId, view);
  return { pull: { ...pull, extra: { ...pull.extra, ...checks } }, assembly };
}

/** The V8 CPU profiler of this process, through the inspector (no command-line flag needed). */
async function startProfiler(): Promise<{ stop(file: string): Promise<string> }> {
  const inspector = await import('node:inspector');
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const tStart = performance.now();
  forceGc();
  const rssAtStart = process.memoryUsage.rss();

  const kit = await import('fhir-kit-client');
  log(`starting the service (fresh PostgreSQL database, own queue prefix) …`);
  const infra = await startInfra(args);
  let server: RemoteSandbox | undefined;
  try {
    forceGc();
    const rssServiceStarted = process.memoryUsage.rss();
    log(`loading ${fmtInt(args.resources)} generated resources into the sandbox (a child process) …`);
    server = await startRemoteSandbox(args.resources);
    const loaded = server.loaded;
    const sandboxPid = server.pid;
    forceGc();
    const rssSandboxLoaded = process.memoryUsage.rss();
    log(`loaded in ${(loaded.ms / 1000).toFixed(1)} s: ${JSON.stringify(loaded.counts)}; RSS ${fmtMb(rssSandboxLoaded)} (sandbox data +${fmtMb(rssSandboxLoaded - rssServiceStarted)})`);

    const admin = await infra.bench.token('admin', 'bench-admin');
    const cm = await infra.bench.token('case_manager', 'bench-cm');
    const endpoint = await new Api(infra.url, admin).call<{ id: string; capabilitiesError: string | null; capabilities?: { patientEverything?: boolean } }>(
      'POST',
      '/api/endpoints',
      { name: 'Bench care team', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000, maxConcurrency: 16 },
      201,
    );
    check(endpoint.capabilitiesError === null, `endpoint capabilities: ${endpoint.capabilitiesError ?? ''}`);
    const ctx: PipelineCtx = { api: new Api(infra.url, cm), infra, endpointId: endpoint.id, loaded };
    localProcesses = async () => {
      // Our database's backends, and the server's background processes (no database).
      const { rows } = await infra.service.db.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR datname IS NULL',
      );
      return { postgres: rows.map((r) => r.pid), redis: pidsNamed('redis-server'), sandbox: [sandboxPid] };
    };
    const expected = expectedPull(loaded);

    const warmup: PhaseResult[] = [];
    if (args.warmup) {
      // One untimed pass of each kind, so every phase meets a warm server (search indexes and
      // result snapshots built), warm connections and JIT-compiled code.
      log('warm-up pass (not in the figures) …');
      await server.setLatency(0);
      const caseId = await prepareCase(ctx);
      const first = await pullPhase(ctx, 'warm-up pipeline', 0, caseId);
      warmup.push(first.pull, first.assembly);
      if (!args.pipelineOnly) warmup.push(await measure(`warm-up naive _count=${NAIVE_COUNT}`, 0, () => naiveLoop(kit, server!.baseUrl, loaded.patientId, NAIVE_COUNT, expected)));
      if (!args.pipelineOnly) warmup.push(await measure(`warm-up naive _count=${NAIVE_COUNT_LARGE}`, 0, () => naiveLoop(kit, server!.baseUrl, loaded.patientId, NAIVE_COUNT_LARGE, expected)));
    }

    const phases: PhaseResult[] = [];
    const assemblies: PhaseResult[] = [];
    for (const latency of args.latencies) {
      await server.setLatency(latency);
      const caseId = await prepareCase(ctx);
      const profileFile = args.profileDir ? path.join(args.profileDir, `pipeline-${latency}ms.cpuprofile`) : undefined;
      const { pull, assembly } = await pullPhase(ctx, 'pipeline', latency, caseId, profileFile);
      phases.push(pull);
      assemblies.push(assembly);
      if (args.pipelineOnly) continue;
      phases.push(await measure(`naive _count=${NAIVE_COUNT}`, latency, () => naiveLoop(kit, server!.baseUrl, loaded.patientId, NAIVE_COUNT, expected)));
      phases.push(await measure(`naive _count=${NAIVE_COUNT_LARGE}`, latency, () => naiveLoop(kit, server!.baseUrl, loaded.patientId, NAIVE_COUNT_LARGE, expected)));
    }
    await server.setLatency(0);

    // ------------------------------------------------------------------ report
    const find = (phase: string, latency: number): PhaseResult | undefined => phases.find((p) => p.phase === phase && p.latencyMs === latency);
    const rows = phases.map((p) => {
      const naive = find(`naive _count=${NAIVE_COUNT}`, p.latencyMs);
      return [
        `${p.latencyMs} ms`,
        p.phase,
        fmtInt(p.resources),
        fmtInt(p.pages),
        `${(p.ms / 1000).toFixed(2)} s`,
        fmtInt(p.resPerS),
        naive ? fmtRatio(p.resPerS / naive.resPerS) : '',
        p.nodeCpuUsPerResource.toFixed(0),
        (p.cpuUsPerResource.postgres ?? 0).toFixed(0),
        (p.cpuUsPerResource.sandbox ?? 0).toFixed(0),
        p.otherLoadCores.toFixed(2),
        fmtMb(p.rssPeakBytes),
        fmtMb(p.rssDeltaBytes),
      ];
    });
    const out: string[] = [];
    out.push('');
    out.push(`Record-pull benchmark: one sandbox patient of ${fmtInt(loaded.total)} resources (${Object.keys(loaded.counts).length} types), sandbox in a child process (auth none, offset paging; a real EHR is another machine: its heap stays out of the service's, its CPU shares this machine's 2 cores).`);
    out.push(
      `Pipeline = the real service (API + BullMQ workers, PULL_CONCURRENCY=${infra.pullConcurrency}, pool ${infra.poolSize}) → PostgreSQL raw store; ` +
        `Patient/$everything split by _type, _count=500. Naive = fhir-kit-client search + nextPage per type (${PULL_RESOURCE_TYPES.length} types), sequential, no storage.`,
    );
    const firstPull = phases.find((p) => p.phase === 'pipeline');
    if (firstPull?.extra) {
      out.push(
        `The pipeline's time includes what a pull does beyond paging: raw pages + one row per resource in PostgreSQL, and its attachment jobs ` +
          `(${String(firstPull.extra.attachmentsFound)} found, ${String(firstPull.extra.attachmentsFetched)} fetched into the blob store) before the pull is complete.`,
      );
    }
    out.push(
      `Ratio = res/s over the naive loop at _count=${NAIVE_COUNT} at the same latency. node/pg µs/res = CPU of this process (all threads) and of the local ` +
        `postgres processes (the bench database's backends + background processes) per resource; sandbox µs/res = the sandbox process. Other load = cores busy with anything else on the host during the phase (noise: rerun when it is not ~0).`,
    );
    out.push('');
    out.push(table(['latency', 'phase', 'resources', 'pages', 'time', 'res/s', 'ratio', 'node µs/res', 'pg µs/res', 'sandbox µs/res', 'other load', 'peak RSS', 'Δ RSS'], rows));
    if (assemblies.length > 0) {
      out.push('');
      out.push(
        'After a pull completes, its parent job assembles a new version of the case bundle from the raw store (queues/assemble-case.ts). ' +
          'Not part of the pull figures above; waited for, so that it overlaps no other phase:',
      );
      out.push(
        table(
          ['latency', 'phase', 'resources', 'time', 'node µs/res', 'pg µs/res', 'other load', 'peak RSS', 'Δ RSS'],
          assemblies.map((a) => [
            `${a.latencyMs} ms`,
            'case assembly after the pull',
            fmtInt(a.resources),
            `${(a.ms / 1000).toFixed(2)} s`,
            a.nodeCpuUsPerResource.toFixed(0),
            (a.cpuUsPerResource.postgres ?? 0).toFixed(0),
            a.otherLoadCores.toFixed(2),
            fmtMb(a.rssPeakBytes),
            fmtMb(a.rssDeltaBytes),
          ]),
        ),
      );
    }
    out.push('');
    out.push(
      `RSS: process start ${fmtMb(rssAtStart)}; service started ${fmtMb(rssServiceStarted)}; sandbox loaded ${fmtMb(rssSandboxLoaded)} ` +
        `(the sandbox's ${fmtInt(loaded.total)} resources live in its own process; this one grew ${fmtMb(rssSandboxLoaded - rssServiceStarted)}); process high-water mark ${fmtMb(processMaxRss())}.`,
    );
    out.push('Δ RSS = phase peak − RSS just before the phase (after a full GC). Sampled every 50 ms.');

    const figures: BenchFigure[] = [];
    const p0 = find('pipeline', 0);
    const p20 = find('pipeline', 20);
    const n20 = find(`naive _count=${NAIVE_COUNT}`, 20);
    const n20l = find(`naive _count=${NAIVE_COUNT_LARGE}`, 20);
    const n0 = find(`naive _count=${NAIVE_COUNT}`, 0);
    if (p0) {
      figures.push({
        figure: 'pipeline res/s @0 ms',
        unit: 'res/s',
        measured: Math.round(p0.resPerS),
        target: `≥ ${TARGET_RES_PER_S_AT_0MS}`,
        pass: p0.resPerS >= TARGET_RES_PER_S_AT_0MS,
        ...(n0 ? { baseline: Math.round(n0.resPerS), baselineName: `naive _count=${NAIVE_COUNT} @0 ms`, ratio: p0.resPerS / n0.resPerS } : {}),
      });
    }
    if (p20 && n20) {
      figures.push({
        figure: `pipeline / naive (_count=${NAIVE_COUNT}) @20 ms`,
        unit: '×',
        measured: Number((p20.resPerS / n20.resPerS).toFixed(2)),
        target: `≥ ${TARGET_RATIO_AT_20MS}`,
        pass: p20.resPerS / n20.resPerS >= TARGET_RATIO_AT_20MS,
        baseline: Math.round(n20.resPerS),
        baselineName: `naive _count=${NAIVE_COUNT} @20 ms`,
        ratio: p20.resPerS / n20.resPerS,
      });
    }
    if (p20 && n20l) {
      figures.push({
        figure: `pipeline / naive (_count=${NAIVE_COUNT_LARGE}) @20 ms`,
        unit: '×',
        measured: Number((p20.resPerS / n20l.resPerS).toFixed(2)),
        baseline: Math.round(n20l.resPerS),
        baselineName: `naive _count=${NAIVE_COUNT_LARGE} @20 ms`,
        ratio: p20.resPerS / n20l.resPerS,
      });
    }
    const pipelinePhases = phases.filter((p) => p.phase === 'pipeline');
    // The sandbox runs in its own process: this process's peak is the service's (and the naive client's).
    const peakAll = Math.max(...pipelinePhases.map((p) => p.rssPeakBytes));
    const deltaMax = Math.max(...pipelinePhases.map((p) => p.rssDeltaBytes));
    figures.push({
      figure: 'pipeline peak RSS (service process)',
      unit: 'MB',
      measured: Math.round(peakAll / MB),
      target: `< ${TARGET_PEAK_RSS_MB}`,
      pass: peakAll < TARGET_PEAK_RSS_MB * MB,
    });
    figures.push({ figure: 'pipeline RSS delta over its baseline', unit: 'MB', measured: Math.round(deltaMax / MB) });
    if (assemblies.length > 0) {
      figures.push({
        figure: 'case assembly after the pull: peak RSS (service process)',
        unit: 'MB',
        measured: Math.round(Math.max(...assemblies.map((a) => a.rssPeakBytes)) / MB),
      });
      figures.push({ figure: 'case assembly after the pull: time', unit: 'ms', measured: Math.round(Math.max(...assemblies.map((a) => a.ms))) });
    }

    out.push('');
    out.push(
      table(
        ['figure', 'target', 'measured', 'baseline', 'ratio', 'result'],
        figures.map((f) => [
          f.figure,
          f.target ?? '',
          f.unit === '×' ? fmtRatio(f.measured) : `${fmtInt(f.measured)} ${f.unit}`,
          f.baseline !== undefined ? `${fmtInt(f.baseline)} res/s` : '',
          f.ratio !== undefined ? fmtRatio(f.ratio) : '',
          f.pass === undefined ? '' : f.pass ? 'PASS' : 'MISS',
        ]),
      ),
    );
    const pass = figures.every((f) => f.pass !== false);
    const durationMs = performance.now() - tStart;
    const files = writeResult({
      bench: BENCH,
      startedAt,
      durationMs: Math.round(durationMs),
      machine: machineInfo(),
      pass,
      figures,
      details: {
        resources: loaded.total,
        loadedCounts: loaded.counts,
        sandbox: { auth: 'none', paging: 'offset', inProcess: true, loadMs: Math.round(loaded.ms) },
        pipeline: { pullConcurrency: infra.pullConcurrency, databasePoolSize: infra.poolSize, pageSize: 500, plan: 'Patient/$everything split by _type' },
        naive: { client: 'fhir-kit-client 2.0.3', counts: [NAIVE_COUNT, NAIVE_COUNT_LARGE], types: PULL_RESOURCE_TYPES },
        rss: { atStart: rssAtStart, serviceStarted: rssServiceStarted, sandboxLoaded: rssSandboxLoaded, processMaxRss: processMaxRss() },
        warmup,
        phases,
        assemblies,
      },
    });
    out.push('');
    out.push(`${pass ? 'All targets met' : 'TARGET MISSED'}. ${(durationMs / 1000).toFixed(0)} s. JSON: ${path.relative(process.cwd(), files.latest)}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return pass ? 0 : 1;
  } finally {
    await server?.stop().catch(() => undefined);
    await stopInfra(infra);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:pull failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
