/**
 * Paging throughput of FhirEndpointClient vs raw `undici.request` (perf-limits.md §3: goal ≥ 0.9×
 * at `_count=500`, gzip decoded in one shot).
 *
 * A local server (in a worker thread, so it does not share the client's event loop) serves
 * precomputed 500-resource searchset pages, plain or gzip. Both sides page sequentially through
 * the same number of pages and parse every page, interleaved page by page so that background load
 * hits both alike. Reported: best round of each side and the median of per-round ratios.
 *
 * Not a jest test (timing on a shared 2-core VM is too noisy for pass/fail). Run:
 *   npx tsc -p tsconfig.json --noEmit false --outDir /tmp/sob-bench && \
 *     node /tmp/sob-bench/test/fhir/bench-client.js
 * or call `runClientBench()` from a bench script.
 */
import { Worker } from 'node:worker_threads';
import IORedis from 'ioredis';
import { request, Agent } from 'undici';
import { FhirEndpointClient } from '../../src/fhir/fhir-client';

export interface BenchOptions {
  /** Pages per run. Default 200 (100 000 resources). */
  readonly pages?: number;
  /** Resources per page. Default 500. */
  readonly count?: number;
  /** Alternating rounds per side. Default 5. */
  readonly rounds?: number;
  readonly redisUrl?: string;
}

export interface BenchSide {
  /** Resources per second, best round. */
  readonly undici: number;
  readonly client: number;
  /** best client / best undici. */
  readonly ratio: number;
  /** Median over rounds of (client / undici), both measured interleaved in the same round. */
  readonly medianPairedRatio: number;
}

export interface BenchResult {
  readonly count: number;
  readonly pages: number;
  readonly plain: BenchSide;
  readonly gzip: BenchSide;
}

const SERVER_SOURCE = `
const http = require('node:http');
const zlib = require('node:zlib');
const { parentPort, workerData } = require('node:worker_threads');
const count = workerData.count;
const entries = [];
for (let i = 0; i < count; i++) {
  entries.push({ fullUrl: 'http://127.0.0.1/fhir/Observation/obs-' + i, resource: {
    resourceType: 'Observation', id: 'obs-' + i, meta: { versionId: '1', lastUpdated: '2024-05-01T10:00:00Z' },
    status: 'final', category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin [Mass/volume] in Blood' }], text: 'Hemoglobin' },
    subject: { reference: 'Patient/p1' }, effectiveDateTime: '2024-04-0' + (1 + (i % 9)) + 'T08:00:00Z',
    valueQuantity: { value: 12 + (i % 10) / 10, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
    referenceRange: [{ low: { value: 11.5, unit: 'g/dL' }, high: { value: 15.5, unit: 'g/dL' } }] } });
}
let base = '';
const pages = new Map();
function page(offset, gzip) {
  const key = offset + ':' + gzip;
  let body = pages.get(key);
  if (!body) {
    const bundle = { resourceType: 'Bundle', type: 'searchset', link: [
      { relation: 'self', url: base + '/fhir/Observation?_count=' + count + '&_offset=' + offset },
      { relation: 'next', url: base + '/fhir/Observation?_count=' + count + '&_offset=' + (offset + count) } ], entry: entries };
    const raw = Buffer.from(JSON.stringify(bundle));
    body = gzip ? zlib.gzipSync(raw) : raw;
    if (pages.size < 4096) pages.set(key, body);
  }
  return body;
}
const server = http.createServer((req, res) => {
  const url = new URL(req.url, base);
  const gzip = /gzip/.test(req.headers['accept-encoding'] || '') && url.searchParams.get('gz') === '1';
  // Only two distinct bodies matter for throughput: reuse offset 0's body with a per-offset next link.
  const offset = Number(url.searchParams.get('_offset') || '0');
  const body = page(offset % (count * 64), gzip);
  res.writeHead(200, Object.assign({ 'content-type': 'application/fhir+json', 'content-length': body.length }, gzip ? { 'content-encoding': 'gzip' } : {}));
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  base = 'http://127.0.0.1:' + server.address().port;
  parentPort.postMessage(base);
});
parentPort.on('message', (m) => { if (m === 'close') server.close(() => process.exit(0)); });
`;

/** Runs the benchmark and prints a summary line per encoding. */
export async function runClientBench(options: BenchOptions = {}): Promise<BenchResult> {
  const count = options.count ?? 500;
  const pages = options.pages ?? 200;
  const rounds = options.rounds ?? 5;
  const worker = new Worker(SERVER_SOURCE, { eval: true, workerData: { count } });
  const base = await new Promise<string>((resolve) => worker.once('message', resolve));
  const redis = new IORedis(options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keyPrefix = `sobbench:${process.pid}:`;
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  const client = new FhirEndpointClient(
    { id: 'bench', baseUrl: `${base}/fhir`, auth: { type: 'none' }, maxRequestsPerSecond: 1_000_000, maxConcurrency: 64, allowInsecureHttp: true },
    { redis, keyPrefix },
  );
  const zlib = await import('node:zlib');

  const undiciPage = async (url: string): Promise<{ resources: number; next?: string }> => {
    const res = await request(url, { dispatcher: agent, headers: { accept: 'application/fhir+json', 'accept-encoding': 'gzip' } });
    let body = Buffer.from(await res.body.arrayBuffer());
    if (res.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
    const bundle = JSON.parse(body.toString('utf8')) as { entry?: unknown[]; link?: { relation: string; url: string }[] };
    return { resources: bundle.entry?.length ?? 0, next: bundle.link?.find((l) => l.relation === 'next')?.url };
  };

  /**
   * Both sides page in lockstep (one undici page, one client page, ...), each side's time summed
   * separately, so load from other processes on this shared VM hits both alike.
   */
  const round = async (gzip: boolean): Promise<{ undici: number; client: number }> => {
    let undiciUrl: string | undefined = `${base}/fhir/Observation?_count=${count}&gz=${gzip ? 1 : 0}`;
    let clientNext: string | undefined;
    const time = { undici: 0n, client: 0n };
    const resources = { undici: 0, client: 0 };
    for (let i = 0; i < pages; i += 1) {
      let t = process.hrtime.bigint();
      const u = await undiciPage(undiciUrl ?? '');
      time.undici += process.hrtime.bigint() - t;
      resources.undici += u.resources;
      undiciUrl = u.next;
      t = process.hrtime.bigint();
      const p = clientNext ? await client.fetchPage(clientNext) : await client.search('Observation', { _count: String(count), gz: gzip ? '1' : '0' });
      time.client += process.hrtime.bigint() - t;
      resources.client += p.bundle.entry?.length ?? 0;
      clientNext = p.nextUrl;
    }
    return { undici: resources.undici / (Number(time.undici) / 1e9), client: resources.client / (Number(time.client) / 1e9) };
  };

  const measure = async (gzip: boolean): Promise<BenchSide> => {
    await round(gzip); // warm-up: connections, JIT, Redis scripts
    let undici = 0;
    let ours = 0;
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r += 1) {
      const { undici: u, client: c } = await round(gzip);
      undici = Math.max(undici, u);
      ours = Math.max(ours, c);
      ratios.push(c / u);
    }
    ratios.sort((a, b) => a - b);
    const median = ratios[Math.floor(ratios.length / 2)] ?? 0;
    return { undici: Math.round(undici), client: Math.round(ours), ratio: Number((ours / undici).toFixed(3)), medianPairedRatio: Number(median.toFixed(3)) };
  };

  try {
    const plain = await measure(false);
    const gzip = await measure(true);
    const result: BenchResult = { count, pages, plain, gzip };
    for (const [name, side] of [['plain', plain], ['gzip', gzip]] as const) {
      console.log(
        `_count=${count} ${name}: undici.request ${side.undici} res/s, FhirEndpointClient ${side.client} res/s, ratio ${side.ratio} (median paired ${side.medianPairedRatio})`,
      );
    }
    return result;
  } finally {
    await client.close();
    await agent.close();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    worker.postMessage('close');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

if (require.main === module) {
  runClientBench({ pages: Number(process.env.BENCH_PAGES ?? 200), rounds: Number(process.env.BENCH_ROUNDS ?? 5) }).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
