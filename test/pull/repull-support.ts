/**
 * What the re-pull tests share: a task's one page committed and the task completed (the raw store as a
 * pull leaves it), and a world of the real service, a sandbox care team A on a clock the test sets, a
 * pull producer and a case with that source, in which pulls are started and awaited.
 */
import { randomUUID } from 'node:crypto';
import type { Condition } from 'fhir/r4';
import IORedis from 'ioredis';
import { EndpointClients } from '../../src/endpoints/endpoint-clients';
import { loadDomainData } from '../../src/cases/domain-data';
import type { Database } from '../../src/db/database';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';
import { commitPage, markTaskFinished, type TaskRow } from '../../src/pull/pull-repository';
import { startPull, type StartPullInput } from '../../src/pull/pull-service';
import { bullConnectionOptions } from '../../src/redis';
import { SecretBox } from '../../src/security/secret-box';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { PullFlowProducer } from '../../queues/pull-flow';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { searchPerType } from '../support/sandbox-case';
import { eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/** Commits the first and only page of `task` (one Condition, or none), with the EHR time `serverTime` when given, and completes the task. */
export async function completeTaskPage(db: Database, task: TaskRow, caseId: string, options: { serverTime?: Date; empty?: boolean } = {}): Promise<void> {
  const entry = options.empty === true ? [] : [{ resource: { resourceType: 'Condition', id: `c-${task.id}` } }];
  const body = Buffer.from(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', entry }));
  const entries = pageEntries(scanSearchPage(body, body.length, 'https://ehr.example.org/fhir'));
  await commitPage(db, {
    task, caseId, fromUrl: null, pageNo: 1, body, fetchedAt: new Date(), entries, nextUrl: null, retriesDelta: 0, attachments: [],
    ...(options.serverTime ? { serverTime: options.serverTime } : {}),
  });
  await markTaskFinished(db, task.id, 'complete', null);
}

/** A diagnosis care team A records during a test (asthma). */
export function newCondition(): Condition {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '195967001', display: 'Asthma' }] },
    subject: { reference: `Patient/${fixturePatientId('care-team-a')}` },
    recordedDate: '2026-11-20',
  };
}

/** The service, care team A on the test's clock, and what starts and awaits pulls. */
export interface RepullWorld {
  readonly svc: TestService;
  readonly teamA: SandboxServer;
  /** A new case with care team A's child as its source (its endpoint searched per type with `searchPerType`); its id. */
  openCase(options?: { readonly searchPerType?: boolean }): Promise<string>;
  /** Starts a pull of `caseId` (`startPull`, as a case manager or the specialist's request would) and waits until it ends; its id and state. */
  pull(caseId: string, input: StartPullInput): Promise<{ pullId: string; state: string | undefined }>;
  /** The pulls that stored the resource (none: not stored). */
  storedBy(caseId: string, resourceType: string, remoteId: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts a {@link RepullWorld} whose EHR reads its time from `ehrNow`; `maxCount`: the largest page care team A sends (default 1000). */
export async function startRepullWorld(ehrNow: () => number, options: { readonly maxCount?: number } = {}): Promise<RepullWorld> {
  const [svc, teamA] = await Promise.all([
    startTestService({}, FAST_CLIENT),
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', now: ehrNow, ...(options.maxCount !== undefined ? { maxCount: options.maxCount } : {}) }),
  ]);
  await teamA.load(fixtureBundle('care-team-a'));
  const producer = new PullFlowProducer(bullConnectionOptions(svc.config.redisUrl), svc.config.queuePrefix, svc.config.pullJobBackoffMs, svc.config.attachmentJobBackoffMs);
  // The endpoints' clients, as the API's (the scope each EHR granted is read for the plan).
  const redis = new IORedis(svc.config.redisUrl, { maxRetriesPerRequest: 1 });
  const clients = new EndpointClients(redis, `${svc.config.queuePrefix}:fhir:`, FAST_CLIENT.clientOptions);
  const deps = {
    db: svc.service.db, pulls: producer, config: { programTimeZone: svc.config.programTimeZone }, domain: loadDomainData(), clients, secrets: new SecretBox(svc.config.secretsKey),
  };
  const actor = { sub: `test-repull-${randomUUID().slice(0, 8)}`, roles: [] };
  const stateOf = async (pullId: string): Promise<string | undefined> =>
    (await svc.service.db.query<{ state: string }>('SELECT state FROM pulls WHERE id = $1', [pullId])).rows[0]?.state;
  const ended = (state: string | undefined): boolean => state === 'complete' || state === 'partial' || state === 'failed';
  return {
    svc,
    teamA,
    async openCase(options = {}) {
      const [admin, cm] = await Promise.all([svc.token('admin'), svc.token('case_manager')]);
      const res = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Care team A', baseUrl: teamA.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true } });
      const endpointId = ((await res.json()) as { id: string }).id;
      if (options.searchPerType) await searchPerType(svc, endpointId);
      const caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
      const source = await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } });
      if (source.status !== 201) throw new Error(`adding the source answered ${source.status}`);
      return caseId;
    },
    async pull(caseId, input) {
      const { pullId } = await startPull(deps, caseId, input, actor);
      return { pullId, state: await eventually(() => stateOf(pullId), ended) };
    },
    async storedBy(caseId, resourceType, remoteId) {
      const { rows } = await svc.service.db.query<{ pull_id: string }>(
        'SELECT pull_id FROM raw_resources WHERE case_id = $1 AND resource_type = $2 AND remote_id = $3',
        [caseId, resourceType, remoteId],
      );
      return rows.map((r) => r.pull_id);
    },
    async stop() {
      await producer.close();
      await clients.closeAll();
      redis.disconnect();
      await Promise.all([svc.stop(), teamA.stop()]);
    },
  };
}
