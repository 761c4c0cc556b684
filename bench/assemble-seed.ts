/**
 * Seeds a case for `bench:assemble` straight into the raw store, through the same repository code a
 * pull commits pages with (`commitPage`: raw page body, raw resources, attachments, task cursor), so
 * the benchmark measures assembly and not pulling.
 *
 * The case has two sources, care teams A and B of the fixture generator, each `perTeam` resources
 * (their shared event groups are identical at both teams, so dedupe has real work). Pages hold
 * {@link PAGE_SIZE} resources, as a pull at `_count=500` would store them.
 *
 * Run as a script (`node dist/bench/assemble-seed.js <databaseUrl> <perTeam>`), it prints the seeded
 * case as one JSON line: `bench/assemble.ts` seeds in a child process so the generator's memory does
 * not count in the assembly's peak RSS.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, FhirResource } from 'fhir/r4';
import type { Database } from '../src/db/database';
import { insertCase } from '../src/db/case-repository';
import { openDatabase } from '../src/db/open';
import { insertEndpoint } from '../src/endpoints/endpoint-repository';
import { generateCareTeamRecords } from '../src/fixtures';
import { commitPage, findTask, insertPull, insertTask, markTaskFinished, setPullState } from '../src/pull/pull-repository';
import { scanSearchPage } from '../src/fhir';
import { pageEntries } from '../src/pull/page-resources';
import { attachmentsOf } from '../src/pull/pull-task-runner';
import { insertSource } from '../src/pull/source-repository';

/** Resources per stored page (the pull asks for `_count=500`). */
export const PAGE_SIZE = 500;

/** The bench case's intake (valid against the intake schema; the case Patient is built from it). */
export const BENCH_INTAKE = {
  patient: {
    name: { given: ['Bench'], family: 'Marker' },
    birthDate: '2017-03-14',
    sex: 'female',
    address: { line: ['1 Benchmark Way'], city: 'Pueblo', state: 'CO', postalCode: '81003', country: 'US' },
  },
  requester: { name: 'Parent Marker', relationship: 'MTH', phone: '+1 719 555 0100', email: 'parent@example.com', attestsLegalAuthority: true },
  diagnosis: { text: 'Type 1 diabetes and celiac disease', codes: [{ system: 'http://snomed.info/sct', code: '46635009', display: 'Diabetes mellitus type 1' }] },
  history: 'Benchmark case.',
  reason: 'Benchmark.',
  questions: ['Benchmark?'],
  urgent: false,
  referringPhysician: { name: 'Dr. Bench', npi: '1234567893', organization: 'Bench Pediatrics' },
};

const TEAMS = [
  { team: 'a', name: 'care-team-a', baseUrl: 'https://fhir.care-team-a.example.org/r4' },
  { team: 'b', name: 'care-team-b', baseUrl: 'https://ehr.care-team-b.example.org/fhir/r4' },
] as const;

/** What was seeded. */
export interface SeededCase {
  readonly caseId: string;
  readonly resources: number;
  readonly pages: number;
  /** Bytes of the stored raw page bodies (the searchset Bundles as a server would send them). */
  readonly pageBytes: number;
  readonly ms: number;
}

/** One searchset page of `resources`, serialized as a server would send it. */
function pageBody(resources: readonly FhirResource[], baseUrl: string): Buffer {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    entry: resources.map((resource) => ({ fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id ?? ''}`, resource, search: { mode: 'match' } })),
  };
  return Buffer.from(JSON.stringify(bundle));
}

/** Seeds one case of two sources with `perTeam` resources each; see the module comment. */
export async function seedCase(db: Database, perTeam: number): Promise<SeededCase> {
  const t0 = performance.now();
  const caseId = randomUUID();
  await insertCase(db, {
    id: caseId,
    status: 'collecting_records',
    intake: BENCH_INTAKE,
    eligibility: { eligible: true, reasons: [] },
    quote: { currency: 'USD', total: 850, items: [] },
    createdBy: 'bench',
    at: new Date(),
  });
  const pullId = randomUUID();
  await insertPull(db, { id: pullId, caseId, since: null, types: null, requestedBy: 'bench' });
  let resources = 0;
  let pages = 0;
  let pageBytes = 0;
  for (const t of TEAMS) {
    const endpointId = randomUUID();
    await insertEndpoint(db, {
      id: endpointId, name: `${t.name}-${caseId.slice(0, 8)}`, baseUrl: t.baseUrl, authType: 'none', clientId: null, scope: null,
      sealedSecret: null, maxRequestsPerSecond: 100, maxConcurrency: 4, allowInsecureHttp: false, rebaseNextLinks: false, inboundSubject: null,
    });
    const sourceId = randomUUID();
    let batch: FhirResource[] = [];
    let patientId: string | null = null;
    const taskId = randomUUID();
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const task = await findTask(db, taskId);
      if (!task) throw new Error('bench task vanished');
      const body = pageBody(batch, t.baseUrl);
      const entries = pageEntries(scanSearchPage(body, body.length, t.baseUrl));
      const attachments = attachmentsOf(entries.entries);
      const pageNo = task.pages + 1;
      await db.transaction((tx) =>
        commitPage(tx, {
          task, caseId, fromUrl: task.nextUrl, pageNo, body,
          fetchedAt: new Date(), entries, nextUrl: `${t.baseUrl}/page/${pageNo + 1}`, retriesDelta: 0, attachments,
        }),
      );
      resources += entries.entries.length;
      pages += 1;
      pageBytes += body.length;
      batch = [];
    };
    let inserted = false;
    for await (const r of generateCareTeamRecords({ team: t.team, targetResources: perTeam })) {
      if (r.resourceType === 'Patient' && patientId === null) patientId = r.id ?? null;
      if (!inserted) {
        // The source needs the child's Patient id; the generator yields the Patient first.
        await insertSource(db, {
          id: sourceId, caseId, endpointId, selector: { id: patientId ?? '' }, state: 'resolved', remotePatientId: patientId,
          candidates: [], reviewReason: null, createdBy: 'bench',
        });
        await insertTask(db, { id: taskId, pullId, sourceId, resourceType: '*', queryKey: 'everything', path: `Patient/${patientId ?? ''}/$everything`, params: {}, remotePatientId: patientId });
        inserted = true;
      }
      batch.push(r);
      if (batch.length >= PAGE_SIZE) await flush();
    }
    await flush();
    await markTaskFinished(db, taskId, 'complete', null);
  }
  await setPullState(db, pullId, 'complete', true);
  return { caseId, resources, pages, pageBytes, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const [url, perTeamText] = process.argv.slice(2);
  if (!url || !perTeamText) throw new Error('usage: assemble-seed.js <databaseUrl> <perTeam>');
  const db = await openDatabase({ databaseUrl: url, dataDir: '/nonexistent', poolSize: 2 });
  try {
    process.stdout.write(`${JSON.stringify(await seedCase(db, Number(perTeamText)))}\n`);
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
