/**
 * Drill: SSRF probes. Endpoint base URLs to private, link-local, metadata and loopback addresses
 * in every spelling (decimal, hex, octal, IPv4-mapped IPv6, DNS names resolving to loopback) are
 * refused at registration and on change; during pulls, next links and redirects off the endpoint's
 * origin or to private addresses fail the query, and attachment links elsewhere are not fetched.
 * An "attacker" server on every loopback address counts what reaches it: nothing may.
 */
import { SOURCE_PATIENT_QUERY_KEY } from '../src/pull/source-patient-query';
import type { Resource } from '@medplum/fhirtypes';
import { startSandboxServer, type SandboxServer } from '../src/sandbox';
import type { FaultAction } from '../src/sandbox';
import { startAttackerServer, type AttackerServer } from './support/attacker-server';
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { FAST_CLIENT, startDrillService, type DrillService } from './support/drill-service';
import { fixtureIntake } from './support/fixtures';
import { pullToEnd } from './support/pull-harness';
import { attachmentProbes, endpointProbes } from './support/ssrf-probes';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface SsrfOptions {
  readonly print?: DrillPrinter;
}

const REFUSAL = /origin|refused|not allowed|private|loopback|link-local|redirect/i;

function ehrRecords(attacker: AttackerServer): Resource[] {
  return [
    { resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' },
    ...Array.from({ length: 12 }, (_, i): Resource => ({ resourceType: 'Condition', id: `c${i}`, subject: { reference: 'Patient/p1' }, code: { text: `condition ${i}` } })),
    ...attachmentProbes(attacker.origin, attacker.port).map(
      ({ url }, i): Resource => ({ resourceType: 'DocumentReference', id: `d${i}`, status: 'current', subject: { reference: 'Patient/p1' }, content: [{ attachment: { contentType: 'application/pdf', url } }] }),
    ),
  ];
}

/** Runs every SSRF probe: endpoint URLs, next links, redirects and attachment links. */
export async function ssrfDrill(options: SsrfOptions = {}): Promise<DrillResult> {
  const log = new DrillLog('SSRF probes', options.print);
  let svc: DrillService | undefined;
  let ehr: SandboxServer | undefined;
  let attacker: AttackerServer | undefined;
  return runDrill(log, async () => {
    try {
      attacker = await startAttackerServer();
      svc = await startDrillService({ env: { PULL_JOB_BACKOFF_MS: '20' }, overrides: FAST_CLIENT });
      ehr = await startSandboxServer({ name: 'ehr', auth: 'none', defaultCount: 5, maxCount: 5 });
      await ehr.load(ehrRecords(attacker));
      const service = svc;
      const server = ehr;
      const admin = await service.token('admin');
      const cm = await service.token('case_manager');

      // Registration and change of endpoints.
      const probes = endpointProbes(attacker.port);
      const accepted: string[] = [];
      const unnamed: string[] = [];
      for (const p of probes) {
        const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: p.what, baseUrl: p.baseUrl, auth: { type: 'none' }, allowInsecureHttp: p.allowInsecureHttp } });
        const body = (await res.json()) as { errors?: { field: string }[] };
        if (res.status !== 400) accepted.push(`${p.what} (${p.baseUrl}) → ${res.status}`);
        else if (!(body.errors ?? []).some((e) => e.field === 'baseUrl')) unnamed.push(p.what);
      }
      const ehrRes = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'EHR', baseUrl: ehr.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } });
      if (ehrRes.status !== 201) throw new Error(`registering the EHR: ${ehrRes.status} ${await ehrRes.text()}`);
      const endpointId = ((await ehrRes.json()) as { id: string }).id;
      for (const p of probes) {
        const res = await svc.request('PATCH', `/api/endpoints/${endpointId}`, { token: admin, body: { baseUrl: p.baseUrl, allowInsecureHttp: p.allowInsecureHttp } });
        if (res.status !== 400) accepted.push(`change to ${p.what} (${p.baseUrl}) → ${res.status}`);
      }
      for (const a of accepted) log.step(`NOT refused: ${a}`);
      log.step(`${probes.length} endpoint URLs probed at registration and on change`);
      log.equal('endpoint URLs accepted (register + change)', accepted.length, 0);
      log.equal('refusals not naming baseUrl', unnamed.length, 0);

      // Pulls whose links lead elsewhere.
      // `queryFailed`: the query for the types asked for ended failed with a refusal (every pull also reads the child's Patient, a query of its own: one page, no next link).
      const pullWith = async (types: string[], fault?: FaultAction): Promise<{ state: string; errors: string[]; caseId: string; queryFailed: boolean }> => {
        const created = (await (await service.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
        const source = await service.request('POST', `/api/cases/${created.id}/sources`, { token: cm, body: { endpointId, patient: { id: 'p1' } } });
        if (source.status !== 201) throw new Error(`adding the EHR source: ${source.status} ${await source.text()}`);
        // p1 is not the fixture intake's child: the source waits for review, and the case manager chooses p1.
        const sourceId = ((await source.json()) as { id: string }).id;
        const chosen = await service.request('POST', `/api/cases/${created.id}/sources/${sourceId}/patient`, { token: cm, body: { patientId: 'p1' } });
        if (chosen.status !== 200) throw new Error(`choosing the source patient: ${chosen.status} ${await chosen.text()}`);
        const rule = fault ? server.faults.add({ match: 'GET *', action: fault }) : undefined;
        try {
          const started = await service.request('POST', `/api/cases/${created.id}/pulls`, { token: cm, body: { types } });
          const { pullId } = (await started.json()) as { pullId: string };
          const view = await pullToEnd(service, created.id, pullId, 60_000);
          const { rows } = await service.service.db.query<{ last_error: string | null; query_key: string; state: string }>('SELECT last_error, query_key, state FROM pull_tasks WHERE pull_id = $1', [pullId]);
          const asked = rows.find((r) => r.query_key !== SOURCE_PATIENT_QUERY_KEY);
          return { state: view.state, errors: rows.map((r) => r.last_error ?? ''), caseId: created.id, queryFailed: asked?.state === 'failed' && REFUSAL.test(asked.last_error ?? '') };
        } finally {
          if (rule !== undefined) server.faults.remove(rule);
        }
      };
      const linkProbes: { what: string; fault: FaultAction }[] = [
        { what: 'next link to another origin', fault: { kind: 'foreign-next-link', origin: attacker.origin } },
        { what: 'next link to IPv6 loopback, other port', fault: { kind: 'foreign-next-link', origin: `http://[::1]:${attacker.port}` } },
        { what: 'next link to the metadata address', fault: { kind: 'foreign-next-link', origin: 'http://169.254.169.254' } },
        { what: 'next link to a private address', fault: { kind: 'foreign-next-link', origin: 'http://10.0.0.1' } },
        { what: 'redirect to another origin', fault: { kind: 'redirect', location: `${attacker.origin}/fhir/Condition` } },
        { what: 'redirect to the metadata address', fault: { kind: 'redirect', location: 'http://169.254.169.254/latest/meta-data', status: 307 } },
        { what: 'redirect to localhost, other port', fault: { kind: 'redirect', location: `http://localhost:${attacker.port}/fhir/Condition`, status: 301 } },
      ];
      for (const probe of linkProbes) {
        const result = await pullWith(['Condition'], probe.fault);
        log.step(`${probe.what}: pull ${result.state}; ${result.errors.join(' | ').slice(0, 160)}`);
        log.holds(`${probe.what}: query failed with a refusal`, result.state !== 'complete' && result.queryFailed, `${result.state}: ${result.errors.join(' | ')}`);
      }
      const docs = await pullWith(['DocumentReference']);
      const { rows } = await svc.service.db.query<{ remote_id: string; state: string; error: string | null }>('SELECT remote_id, state, error FROM attachments WHERE case_id = $1 ORDER BY remote_id', [docs.caseId]);
      const attachmentList = attachmentProbes(attacker.origin, attacker.port);
      log.equal('attachment pull state', docs.state, 'complete');
      log.equal('attachment links found', rows.length, attachmentList.length);
      log.equal('attachment links refused', rows.filter((r) => r.state === 'failed' && REFUSAL.test(r.error ?? '')).length, attachmentList.length);
      const hits = attacker.hits();
      for (const h of hits.slice(0, 5)) log.step(`attacker was reached: ${h}`);
      log.equal('requests that reached the attacker server', hits.length, 0);
      log.summarize(`${probes.length} endpoint URLs ×2, ${linkProbes.length} link/redirect probes, ${attachmentList.length} attachment links; accepted ${accepted.length}; attacker hits ${hits.length}`);
    } finally {
      await svc?.stop();
      await ehr?.stop();
      await attacker?.stop();
    }
  });
}
