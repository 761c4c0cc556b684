import type { Bundle, Observation, Provenance } from 'fhir/r4';
import { unresolvedReferences } from '../../src/normalize/bundle';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import { fixtureBundle, fixtureIntake, fixtureManifest, fixturePatientId } from '../support/fixture-child';
import { bundleValidationErrors } from '../support/fhir-validation';
import { bundleAssembled, eventually, FAST_CLIENT, startTestService, type TestService } from '../support/service';

/**
 * The fixture child pulled from two care teams through the real pipeline: the pull's parent job
 * assembles one document bundle where the shared lab result, document, imaging study and the
 * differently coded condition each appear once, with a Provenance naming both sources; the
 * completeness report balances; the bundle validates; re-assembly is deterministic; switching a
 * dedupe rule off undoes its merges.
 */
let svc: TestService;
let teams: SandboxServer[];
let caseId: string;
let cm: string;

interface Manifest {
  overlaps: { duplicates: { rule: string; resourceType: string; a: string; b: string }[] };
}

beforeAll(async () => {
  svc = await startTestService({ PULL_JOB_BACKOFF_MS: '50' }, FAST_CLIENT);
  teams = await Promise.all([
    startSandboxServer({ name: 'care-team-a', auth: 'none', paging: 'offset', maxCount: 50 }),
    startSandboxServer({ name: 'care-team-b', auth: 'none', paging: 'token', maxCount: 50 }),
  ]);
  await teams[0]?.load(fixtureBundle('care-team-a'));
  await teams[1]?.load(fixtureBundle('care-team-b'));
  const admin = await svc.token('admin');
  cm = await svc.token('case_manager');
  caseId = ((await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string }).id;
  for (const [i, name] of (['care-team-a', 'care-team-b'] as const).entries()) {
    const endpoint = (await (
      await svc.request('POST', '/api/endpoints', { token: admin, body: { name, baseUrl: teams[i]?.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } })
    ).json()) as { id: string };
    await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId: endpoint.id, patient: { id: fixturePatientId(name) } } });
  }
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };
  await bundleAssembled(svc, caseId, cm);
  expect(pullId).toBeTruthy();
}, 120_000);

afterAll(async () => {
  await Promise.all([svc.stop(), ...teams.map((t) => t.stop())]);
});

async function getBundle(version?: number): Promise<Bundle> {
  const res = await svc.request('GET', `/api/cases/${caseId}/bundle${version ? `?version=${version}` : ''}`, { token: await svc.token('specialist') });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/fhir\+json/);
  expect(res.headers.get('x-bundle-version')).toMatch(/^[1-9][0-9]*$/);
  // The stored text is served as is: the same bytes a parse and re-serialisation would give.
  const text = await res.text();
  const bundle = JSON.parse(text) as Bundle;
  expect(JSON.stringify(bundle)).toBe(text);
  return bundle;
}

it('streams the bundle gzip-encoded when the client accepts it, plain otherwise, the same JSON either way', async () => {
  const token = await svc.token('specialist');
  const zipped = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token, headers: { 'accept-encoding': 'gzip' } });
  expect(zipped.headers.get('content-encoding')).toBe('gzip');
  const plain = await svc.request('GET', `/api/cases/${caseId}/bundle`, { token, headers: { 'accept-encoding': 'identity' } });
  expect(plain.headers.get('content-encoding')).toBeNull();
  expect(plain.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
  expect(await zipped.text()).toBe(await plain.text());
});

it('assembles one valid document bundle from both care teams, with every reference resolving', async () => {
  const bundle = await getBundle();
  expect(bundle.type).toBe('document');
  expect(bundle.entry?.[0]?.resource?.resourceType).toBe('Composition');
  expect(bundle.identifier?.value).toBeTruthy();
  expect(unresolvedReferences(bundle)).toEqual([]);
  expect(bundleValidationErrors(bundle)).toEqual([]);
});

it('keeps each shared record once, with a Provenance naming both sources', async () => {
  const bundle = await getBundle();
  const manifest = fixtureManifest() as unknown as Manifest;
  const provenances = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Provenance => r?.resourceType === 'Provenance');
  const teamA = teams[0]?.baseUrl ?? '';
  const teamB = teams[1]?.baseUrl ?? '';
  for (const dup of manifest.overlaps.duplicates) {
    // The merge Provenance names both original records, one at each care team.
    const merge = provenances.find((p) => {
      const text = JSON.stringify(p.entity ?? []);
      return text.includes(dup.a.split('/')[1] ?? '') && text.includes(dup.b.split('/')[1] ?? '');
    });
    expect({ dup: `${dup.a} ~ ${dup.b}`, merged: merge !== undefined }).toEqual({ dup: `${dup.a} ~ ${dup.b}`, merged: true });
    const text = JSON.stringify(merge);
    expect(text).toContain(new URL(teamA).host);
    expect(text).toContain(new URL(teamB).host);
  }
});

it('codes every glucose result as the kind of value it holds: the mass LOINC beside mg/dL only, the molar one beside mmol/L only, the shared one included', async () => {
  const bundle = await getBundle();
  const glucose = (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is Observation => r?.resourceType === 'Observation')
    .map((o) => ({ loinc: (o.code.coding ?? []).filter((c) => c.system === 'http://loinc.org').map((c) => c.code ?? ''), unit: o.valueQuantity?.code }))
    .filter((o) => o.loinc.some((c) => c === '2345-7' || c === '14749-6'));
  expect(glucose.some((g) => g.unit === 'mmol/L')).toBe(true);
  expect(glucose.some((g) => g.unit === 'mg/dL')).toBe(true);
  for (const g of glucose) {
    if (g.loinc.includes('2345-7')) expect(g).toMatchObject({ unit: 'mg/dL' });
    if (g.loinc.includes('14749-6')) expect(g).toMatchObject({ unit: 'mmol/L' });
  }
});

it('accounts for every pulled resource: pulled = in bundle + merged + left out', async () => {
  const res = await svc.request('GET', `/api/cases/${caseId}/completeness`, { token: cm });
  expect(res.status).toBe(200);
  const report = (await res.json()) as {
    totals: { pulled: number; inBundle: number; merged: number; leftOut: number; balanced: boolean };
    sources: { resourceTypes: { resourceType: string; pulled: number; inBundle: number; merged: unknown[]; leftOut: unknown[]; balanced: boolean }[] }[];
  };
  expect(report.totals.balanced).toBe(true);
  expect(report.totals.pulled).toBe(report.totals.inBundle + report.totals.merged + report.totals.leftOut);
  expect(report.totals.merged).toBeGreaterThanOrEqual((fixtureManifest() as unknown as Manifest).overlaps.duplicates.length);
  for (const s of report.sources) for (const t of s.resourceTypes) expect({ type: t.resourceType, balanced: t.balanced }).toEqual({ type: t.resourceType, balanced: true });
});

it('re-assembles deterministically, and switching a rule off undoes its merges', async () => {
  const first = await getBundle();
  const rebuilt = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
  expect(rebuilt.status).toBe(201);
  const { version } = (await rebuilt.json()) as { version: number };
  const second = await getBundle(version);
  const strip = (b: Bundle) => JSON.stringify({ ...b, identifier: undefined, timestamp: undefined, entry: b.entry?.map((e) => (e.resource?.resourceType === 'Composition' || e.resource?.resourceType === 'Provenance' ? { ...e, resource: { ...e.resource, date: undefined, recorded: undefined } } : e)) });
  expect(strip(second)).toEqual(strip(first));
  expect(second.identifier?.value).not.toBe(first.identifier?.value);

  const noObservationRule = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: { disabledRules: ['observation:code-time-value'] } });
  const third = (await noObservationRule.json()) as { version: number };
  const observations = (b: Bundle) => (b.entry ?? []).filter((e) => e.resource?.resourceType === 'Observation').length;
  expect(observations(await getBundle(third.version))).toBeGreaterThan(observations(second));
  expect((await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: { disabledRules: ['nonsense'] } })).status).toBe(400);
});

interface Changes {
  from: { version: number; trigger: string };
  to: { version: number; trigger: string };
  totals: { added: number; removed: number; changed: number; unchanged: number };
  byType: { resourceType: string; added: number; removed: number; changed: number }[];
  added: { fullUrl: string; resourceType: string; section?: string; description: string }[];
  removed: unknown[];
  changed: { fullUrl: string; resourceType: string }[];
  truncated: boolean;
}

it('shows what changed between two bundle versions: nothing for a plain rebuild; the un-merged results when a rule is switched off', async () => {
  const specialist = await svc.token('specialist');
  const changes = async (query: string): Promise<Changes> => {
    const res = await svc.request('GET', `/api/cases/${caseId}/bundle/changes${query}`, { token: specialist });
    expect(res.status).toBe(200);
    return (await res.json()) as Changes;
  };
  const plain = (await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).json()) as { version: number };
  const again = (await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).json()) as { version: number };
  // The same raw data assembles to the same entries, byte for byte.
  const none = await changes(`?from=${plain.version}&to=${again.version}`);
  expect(none.totals).toMatchObject({ added: 0, removed: 0, changed: 0 });
  expect(none.totals.unchanged).toBeGreaterThan(0);

  const unmerged = (await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: { disabledRules: ['observation:code-time-value'] } })).json()) as { version: number };
  const observations = (b: Bundle) => (b.entry ?? []).filter((e) => e.resource?.resourceType === 'Observation').map((e) => e.fullUrl);
  const before = new Set(observations(await getBundle(again.version)));
  const after = observations(await getBundle(unmerged.version));
  // Default: the latest version against the one before it.
  const diff = await changes('');
  expect([diff.from.version, diff.to.version]).toEqual([again.version, unmerged.version]);
  expect(diff.to.trigger).toBe('rebuild');
  expect(diff.added.map((c) => c.fullUrl).sort()).toEqual(after.filter((u) => !before.has(u)).sort());
  expect(diff.added.length).toBeGreaterThan(0);
  for (const c of diff.added) {
    expect(c.resourceType).toBe('Observation');
    expect(c.section).toMatch(/^(results|vitals)$/);
    expect(c.description).toMatch(/^\d{4}-\d{2}-\d{2}/); // the narrative line starts with the date
  }
  expect(diff.removed).toEqual([]);
  // What pointed at a merged result now points at its own (e.g. the team's DiagnosticReport).
  expect(diff.changed.length).toBeGreaterThan(0);
  expect(diff.byType.find((t) => t.resourceType === 'Observation')?.added).toBe(diff.added.length);
  // The lists are cut at `limit`; the totals still count everything.
  const cut = await changes('?limit=1');
  expect(cut.added).toHaveLength(1);
  expect(cut.totals).toEqual(diff.totals);
  expect(cut.truncated).toBe(true);

  // The readable record shows them first with ?since=N.
  const page = await (await svc.request('GET', `/api/cases/${caseId}/bundle/summary?since=${again.version}`, { token: specialist })).text();
  expect(page).toContain(`What changed since version ${again.version}`);
  expect(page).toContain(`${diff.totals.added} added, ${diff.totals.changed} changed, 0 no longer in the record`);
  expect(page.indexOf('id="changes"')).toBeLessThan(page.indexOf('id="s0"'));
  expect((await svc.request('GET', `/api/cases/${caseId}/bundle/summary?since=999`, { token: specialist })).status).toBe(404);
  const res404 = await svc.request('GET', `/api/cases/${caseId}/bundle/changes?from=999`, { token: specialist });
  expect(res404.status).toBe(404);
  expect(await res404.text()).toContain('Version 999');
  const bad = await svc.request('GET', `/api/cases/${caseId}/bundle/changes?from=0`, { token: specialist });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('query.from');
});

it("keeps a rule the case manager switched off for the assemblies that follow (a new pull), until a rebuild says otherwise", async () => {
  const observations = (b: Bundle) => (b.entry ?? []).filter((e) => e.resource?.resourceType === 'Observation').length;
  const versions = async () =>
    ((await (await svc.request('GET', `/api/cases/${caseId}/bundle/versions`, { token: cm })).json()) as { items: { version: number; trigger: string; disabledRules: string[] }[] }).items;
  const merged = observations(await getBundle((((await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).json()) as { version: number }).version)));
  const reason = 'Two distinct glucose results were merged';
  const off = (await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: { disabledRules: ['observation:code-time-value'], reason } })).json()) as { version: number };
  // Who switched it off, and why, is on the case timeline with the version.
  const timeline = ((await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { timeline: { type: string; actorRole?: string; reason?: string; data: unknown }[] }).timeline;
  expect(timeline.filter((e) => e.type === 'bundle_rebuilt').at(-1)).toMatchObject({ actorRole: 'case_manager', reason, data: { version: off.version, disabledRules: ['observation:code-time-value'] } });
  const badReason = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: { reason: '' } });
  expect(badReason.status).toBe(400);
  expect(((await badReason.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe('reason');
  const unmerged = observations(await getBundle(off.version));
  expect(unmerged).toBeGreaterThan(merged);

  // A new pull ends and assembles the case again: the rule stays off.
  const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };
  const pulled = await eventually(versions, (items) => items.some((v) => v.trigger.startsWith(`pull:${pullId}:`)), 60_000);
  const byPull = pulled.find((v) => v.trigger.startsWith(`pull:${pullId}:`));
  expect(byPull).toMatchObject({ disabledRules: ['observation:code-time-value'] });
  expect(observations(await getBundle(byPull?.version))).toBe(unmerged);

  // A rebuild decides anew: without disabledRules every rule is on again.
  const on = (await (await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} })).json()) as { version: number };
  expect(observations(await getBundle(on.version))).toBe(merged);
  expect((await versions())[0]).toMatchObject({ version: on.version, disabledRules: [] });
}, 120_000);
