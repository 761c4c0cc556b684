/**
 * Opinion report benchmark (`npm run bench:report`): PDF render + delivery latency per report.
 *
 * The real service in-process (role `all`: API + BullMQ workers, a fresh PostgreSQL database created
 * and dropped here, its own Redis queue prefix) and one sandbox referring EHR (auth `none`, 0 ms
 * latency, seeded with the fixture) in this process. For each of `--reports` cases (default 40,
 * after `--warmup` 3 untimed ones) a specialist's opinion for the fixture child is drafted and the
 * referring EHR added as recipient (untimed); then the clock runs from `POST …/opinion/sign`
 * (render the PDF, freeze the version, queue the delivery) until the delivery's row says
 * `delivered` (patient found, DiagnosticReport + DocumentReference + Communication written in one
 * transaction, result recorded, case moved on), watched by a query every 2 ms.
 *
 * Reported: median and p95 of that latency (target: median < 250 ms), and, apart, the PDF
 * render alone (`renderReportPdf`, same input) median and p95. Every report is checked to be in
 * the sandbox exactly once.
 * Env: TEST_POSTGRES_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
 *      TEST_REDIS_URL (default redis://127.0.0.1:6379).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Bundle } from 'fhir/r4';
import type { Intake } from '../src/cases/intake-schema';
import { REPORT_IDENTIFIER_SYSTEM } from '../src/delivery/report-resources';
import { renderReportPdf } from '../src/report/report-pdf';
import { startSandboxServer } from '../src/sandbox';
import { referredIntake } from '../src/fixtures/fixture-child-intake';
import { startBenchService } from './bench-service';
import { fmtRatio, machineInfo, table, writeResult } from './support';

const BENCH = 'report';
const TARGET_MS = 250;
const ROOT = path.resolve(__dirname, '..', '..');

const log = (line: string): void => {
  process.stderr.write(`[bench:report ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function parseArgs(argv: readonly string[]): { reports: number; warmup: number } {
  const args = { reports: 40, warmup: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--reports') args.reports = value;
    else if (argv[i] === '--warmup') args.warmup = value;
    else throw new Error(`Unknown flag ${argv[i] ?? ''}`);
  }
  if (!Number.isInteger(args.reports) || args.reports < 1 || !Number.isInteger(args.warmup) || args.warmup < 0) throw new Error('--reports ≥ 1 and --warmup ≥ 0');
  return args;
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

/** The fixture child's intake, referred by the fixture's physician, with a third question. */
const benchIntake = (): Intake =>
  referredIntake({ questions: ['Should she move to an insulin pump?', 'Is her growth slowing because of celiac disease?', 'Does she need a bone density scan?'] });

const paragraph = (topic: string): string =>
  Array.from({ length: 6 }, (_, i) => `${topic} finding ${i + 1}: the records from both care teams were reviewed together with the growth charts and laboratory trends, and the conclusion below follows from them.`).join(' ');

function opinion(intake: Intake) {
  return {
    summary: paragraph('Summary'),
    diagnosisAssessment: paragraph('Assessment'),
    recommendations: paragraph('Recommendation'),
    answers: intake.questions.map((question) => ({ question, answer: paragraph('Answer') })),
    followUp: 'Endocrinology review in 3 months; growth check in 6 months.',
    specialist: { name: 'Dr. Zoë Ångström', npi: '1234567893' },
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const ehr = await startSandboxServer({ name: 'referring-ehr', auth: 'none', paging: 'offset', latencyMs: 0 });
  await ehr.load(JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures', 'referring-ehr.json'), 'utf8')) as Bundle);
  const bench = await startBenchService('report');
  const { service, url } = bench;
  const [admin, cm, specialist] = await Promise.all([bench.token('admin', 'bench-admin'), bench.token('case_manager', 'bench-cm'), bench.token('specialist', 'bench-spec')]);
  const call = async (method: string, route: string, bearer: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}${route}`, { method, headers: { authorization: `Bearer ${bearer}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (res.status >= 300) throw new Error(`${method} ${route} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  let exit = 0;
  try {
    const endpoint = await call('POST', '/api/endpoints', admin, { name: 'Referring EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 });
    const intake = benchIntake();
    const prepare = async (): Promise<string> => {
      const { id } = (await call('POST', '/api/cases', cm, intake)) as { id: string };
      await service.db.query(`UPDATE cases SET status = 'assigned' WHERE id = $1`, [id]);
      await call('POST', `/api/cases/${id}/recipients`, cm, { endpointId: endpoint.id });
      await call('PUT', `/api/cases/${id}/opinion`, specialist, opinion(intake));
      return id;
    };
    const signMs: number[] = [];
    const signAndDeliver = async (caseId: string): Promise<number> => {
      const t0 = performance.now();
      await call('POST', `/api/cases/${caseId}/opinion/sign`, specialist);
      signMs.push(performance.now() - t0);
      for (;;) {
        const { rows } = await service.db.query<{ state: string }>('SELECT state FROM deliveries WHERE case_id = $1', [caseId]);
        const state = rows[0]?.state;
        if (state === 'delivered') return performance.now() - t0;
        if (state === 'failed' || state === 'needs_review') throw new Error(`delivery ended ${state}`);
        if (performance.now() - t0 > 30_000) throw new Error('delivery took over 30 s');
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    log(`${args.warmup} warm-up + ${args.reports} timed reports`);
    for (let i = 0; i < args.warmup; i++) await signAndDeliver(await prepare());
    const latencies: number[] = [];
    const caseIds: string[] = [];
    for (let i = 0; i < args.reports; i++) {
      const caseId = await prepare();
      caseIds.push(caseId);
      latencies.push(await signAndDeliver(caseId));
    }
    if (process.env.BENCH_TRACE) {
      const last = caseIds[caseIds.length - 1] ?? '';
      const { rows } = await service.db.query<{ created_at: Date; last_attempt_at: Date; delivered_at: Date }>('SELECT created_at, last_attempt_at, delivered_at FROM deliveries WHERE case_id = $1', [last]);
      const r = rows[0];
      const base = r?.created_at.getTime() ?? 0;
      log(`trace: created 0, attempt ${(r?.last_attempt_at.getTime() ?? 0) - base}, delivered ${(r?.delivered_at.getTime() ?? 0) - base}`);
      for (const q of ehr.requests().slice(-8)) log(`trace: ${q.at - base} ${q.method} ${q.target.slice(0, 80)} ${q.status ?? ''}`);
    }
    // Each report exactly once in the EHR.
    for (const caseId of caseIds) {
      const res = await fetch(`${ehr.baseUrl}/DiagnosticReport?identifier=${encodeURIComponent(`${REPORT_IDENTIFIER_SYSTEM}|${caseId}-v1`)}`);
      const found = ((await res.json()) as Bundle).entry?.filter((e) => e.search?.mode !== 'include').length ?? 0;
      if (found !== 1) throw new Error(`case ${caseId}: ${found} DiagnosticReports in the EHR, expected 1`);
    }
    // The PDF render alone, same content.
    const renders: number[] = [];
    const body = opinion(intake);
    for (let i = 0; i < args.reports; i++) {
      const t0 = performance.now();
      await renderReportPdf({
        caseId: caseIds[i] ?? 'x', version: 1, status: 'final', patient: { name: `${intake.patient.name.given.join(' ')} ${intake.patient.name.family}`, birthDate: intake.patient.birthDate },
        diagnosis: intake.diagnosis.text, summary: body.summary, diagnosisAssessment: body.diagnosisAssessment, recommendations: body.recommendations,
        answers: body.answers, followUp: body.followUp, specialist: body.specialist, signedAt: new Date(), timeZone: bench.config.programTimeZone,
      });
      renders.push(performance.now() - t0);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const rsorted = [...renders].sort((a, b) => a - b);
    const median = quantile(sorted, 0.5);
    const p95 = quantile(sorted, 0.95);
    const pass = median < TARGET_MS;
    process.stdout.write(
      `\n${table(
        ['figure', 'median', 'p95', 'target', 'ratio (median / target)', 'result'],
        [
          ['sign → delivered (PDF render + delivery)', `${median.toFixed(1)} ms`, `${p95.toFixed(1)} ms`, `< ${TARGET_MS} ms`, fmtRatio(median / TARGET_MS), pass ? 'PASS' : 'MISS'],
          ['  of which: the sign request (render, store, queue)', `${quantile([...signMs.slice(args.warmup)].sort((a, b) => a - b), 0.5).toFixed(1)} ms`, `${quantile([...signMs.slice(args.warmup)].sort((a, b) => a - b), 0.95).toFixed(1)} ms`, '', '', ''],
          ['PDF render alone', `${quantile(rsorted, 0.5).toFixed(1)} ms`, `${quantile(rsorted, 0.95).toFixed(1)} ms`, '', '', ''],
        ],
      )}\n\n${args.reports} reports, sandbox at 0 ms, ${os.cpus().length} CPUs.\n`,
    );
    const files = writeResult({
      bench: BENCH,
      startedAt: startedAt.toISOString(),
      durationMs: Date.now() - startedAt.getTime(),
      machine: machineInfo(),
      pass,
      figures: [
        { figure: 'report: sign → delivered, median', unit: 'ms', measured: median, target: `< ${TARGET_MS}`, pass },
        { figure: 'report: sign → delivered, p95', unit: 'ms', measured: p95 },
        { figure: 'report: PDF render, median', unit: 'ms', measured: quantile(rsorted, 0.5) },
      ],
      details: { reports: args.reports, latenciesMs: latencies, renderMs: renders },
    });
    log(`result: ${path.relative(ROOT, files.latest)}`);
    exit = pass ? 0 : 1;
  } finally {
    await bench.stop().catch((err: unknown) => log(`stop failed: ${String(err)}`));
    await ehr.stop();
  }
  return exit;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:report failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
