/**
 * Test support for the assembly tests (dedupe, provenance, composition, bundle): a small
 * stand-in for the normalizer that turns fixture resources into NormalizedResources the
 * way `src/normalize/normalize.ts` does (uuid v5 ids, `urn:uuid:` references, the case
 * Patient as subject, origin meta, mapped codings appended, optional UCUM conversion).
 */
import type { Bundle, Coding, FhirResource, Observation } from 'fhir/r4';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONDITIONS } from '../../src/fixtures/catalog/conditions';
import { LAB_TESTS, TEAM_B_LOCAL_LAB_SYSTEM } from '../../src/fixtures/catalog/labs';
import { buildCasePatient, casePatientFullUrl } from '../../src/normalize/case-patient';
import { importedFullUrl, importedResourceId } from '../../src/normalize/ids';
import { applyOrigin } from '../../src/normalize/origin';
import { rawKey, type AssemblyOptions, type DedupeResult, type NormalizedResource, type SourceInfo } from '../../src/normalize/types';
import { fixtureIntake } from '../support/fixture-child';
import { buildDocumentBundle } from '../../src/normalize/bundle';
import { buildComposition, type PatientStory } from '../../src/normalize/composition';
import { dedupe } from '../../src/normalize/dedupe/index';
import { buildProvenances } from '../../src/normalize/provenance';
import { ORIGINAL_QUANTITY_EXTENSION } from '../../src/normalize/units';

export const ROOT = join(__dirname, '..', '..');
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';

export const CASE_ID = 'case-fixture-child';

export const SOURCE_A: SourceInfo = {
  sourceId: 'src-a', baseUrl: 'https://fhir.care-team-a.example.org/r4', name: "Big Sky Children's Hospital",
  origin: 'local-ehr', remotePatientId: 'et53tHPT3qjlSsPSzapwN', pullIds: ['pull-a-1'], lastFetchedAt: '2026-10-31T20:00:00Z',
};
export const SOURCE_B: SourceInfo = {
  sourceId: 'src-b', baseUrl: 'https://ehr.care-team-b.example.org/fhir/r4', name: 'Gallatin Valley Clinic',
  origin: 'local-ehr', remotePatientId: '196963321484449', pullIds: ['pull-b-1', 'pull-b-2'], lastFetchedAt: '2026-10-31T20:05:00Z',
};

/** Resources of a committed fixture bundle. */
export function fixtureResources(name: 'care-team-a' | 'care-team-b'): FhirResource[] {
  const bundle = JSON.parse(readFileSync(join(ROOT, 'fixtures', `${name}.json`), 'utf8')) as Bundle;
  return (bundle.entry ?? []).map((e) => e.resource).filter((r): r is FhirResource => r !== undefined);
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

const LOCAL = new Map(Object.values(LAB_TESTS).map((t) => [t.teamB.localCode, t]));
const ALTERNATE = new Map(Object.values(LAB_TESTS).flatMap((t) => (t.teamB.alternate ? [[t.teamB.alternate.loinc, t] as const] : [])));
const BY_ICD = new Map(Object.values(CONDITIONS).map((c) => [c.icd10cm.code, c]));

function rewrite(value: Json, source: SourceInfo, patientUrl: string, patientId: string | undefined): Json {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, source, patientUrl, patientId));
  if (value === null || typeof value !== 'object') return value;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) {
    const m = typeof v === 'string' && (k === 'reference' || (k === 'url' && 'contentType' in value)) ? /^([A-Z][A-Za-z]+)\/([^/]+)$/.exec(v) : null;
    if (m && m[1] === 'Patient' && m[2] === patientId) out[k] = patientUrl;
    else if (m) out[k] = importedFullUrl(source.baseUrl, m[1] ?? '', m[2] ?? '');
    else out[k] = rewrite(v as Json, source, patientUrl, patientId);
  }
  return out;
}

function appendCoding(codings: Coding[], c: Coding): void {
  if (!codings.some((x) => x.system === c.system && x.code === c.code)) codings.push(c);
}

/** Terminology and unit mapping as the normalizer does it (mapped codings appended). */
function map(resource: FhirResource, convertUnits: boolean): void {
  if (resource.resourceType === 'Observation') {
    const codings = resource.code.coding ?? [];
    for (const c of [...codings]) {
      const local = c.system === TEAM_B_LOCAL_LAB_SYSTEM && c.code ? LOCAL.get(c.code) : undefined;
      if (local) appendCoding(codings, { system: LOINC, code: local.loinc, display: local.display });
      const alt = c.system === LOINC && c.code ? ALTERNATE.get(c.code) : undefined;
      if (alt) {
        appendCoding(codings, { system: LOINC, code: alt.loinc, display: alt.display });
        if (convertUnits) convert(resource, alt.teamB.alternate?.factor ?? 1, alt.unit.ucum ?? alt.unit.display);
      }
    }
  }
  if (resource.resourceType === 'Condition') {
    const codings = resource.code?.coding ?? [];
    for (const c of [...codings]) {
      const concept = c.system === ICD10CM && c.code ? BY_ICD.get(c.code) : undefined;
      if (concept) appendCoding(codings, { system: SNOMED, code: concept.snomed.code, display: concept.snomed.display });
    }
  }
}

/** Converts the value (and range) to `unit`; the value keeps the reported Quantity as `original-quantity`, as `src/normalize/units.ts` does. */
function convert(obs: Observation, factor: number, unit: string): void {
  const q = obs.valueQuantity;
  if (q?.value === undefined) return;
  const original = { ...q };
  obs.valueQuantity = {
    value: Math.round((q.value / factor) * 1e4) / 1e4, unit, system: 'http://unitsofmeasure.org', code: unit,
    extension: [{ url: ORIGINAL_QUANTITY_EXTENSION, valueQuantity: original }],
  };
  for (const rr of obs.referenceRange ?? []) {
    for (const end of ['low', 'high'] as const) {
      const v = rr[end]?.value;
      if (v !== undefined) rr[end] = { value: Math.round((v / factor) * 1e4) / 1e4, unit, system: 'http://unitsofmeasure.org', code: unit };
    }
  }
}

/** Options of {@link fakeNormalize}. */
export interface FakeNormalizeOptions {
  /** Convert molar lab values to the canonical unit (default true); false keeps mmol/L beside both LOINC codes. */
  readonly convertUnits?: boolean;
}

/** The normalized resources of the given sources, case Patient first. */
export function fakeNormalize(sources: readonly { info: SourceInfo; resources: readonly FhirResource[] }[], options: FakeNormalizeOptions = {}): NormalizedResource[] {
  const casePatient = buildCasePatient(CASE_ID, fixtureIntake(), sources.map((s) => ({
    fullUrl: importedFullUrl(s.info.baseUrl, 'Patient', s.info.remotePatientId ?? ''),
    sourceName: s.info.name,
  })));
  const out: NormalizedResource[] = [casePatient];
  for (const { info, resources } of sources) {
    for (const raw of resources) {
      const remoteId = raw.id ?? '';
      const copy = rewrite(raw as unknown as Json, info, casePatient.fullUrl, info.remotePatientId) as unknown as FhirResource;
      copy.id = importedResourceId(info.baseUrl, raw.resourceType, remoteId);
      applyOrigin(copy as unknown as Record<string, unknown>, info.baseUrl, info.origin);
      map(copy, options.convertUnits ?? true);
      out.push({
        key: rawKey({ sourceId: info.sourceId, resourceType: raw.resourceType, remoteId }),
        fullUrl: importedFullUrl(info.baseUrl, raw.resourceType, remoteId),
        resource: copy,
        sourceId: info.sourceId,
        origin: info.origin,
      });
    }
  }
  return out;
}

/** The fixture child from both care teams, normalized by the stand-in. */
export function fixtureChild(options: FakeNormalizeOptions = {}): NormalizedResource[] {
  return fakeNormalize([
    { info: SOURCE_A, resources: fixtureResources('care-team-a') },
    { info: SOURCE_B, resources: fixtureResources('care-team-b') },
  ], options);
}

/** The raw key of a fixture reference (`Type/id`) at a source. */
export function keyOf(source: SourceInfo, reference: string): string {
  const [type, id] = reference.split('/');
  return rawKey({ sourceId: source.sourceId, resourceType: type ?? '', remoteId: id ?? '' });
}

/** The fullUrl of a fixture reference (`Type/id`) at a source. */
export function fullUrlOf(source: SourceInfo, reference: string): string {
  const [type, id] = reference.split('/');
  return importedFullUrl(source.baseUrl, type ?? '', id ?? '');
}

// ---- full assembly ------------------------------------------------------------------

export const OPTIONS: AssemblyOptions = { bundleId: 'bundle-1', timestamp: '2026-11-02T15:00:00Z' };

/** The fixture intake's story. */
export function fixtureStory(): PatientStory {
  const intake = fixtureIntake();
  return { diagnosis: intake.diagnosis.text, history: intake.history, reason: intake.reason, questions: intake.questions };
}

/** normalize (given) → dedupe → provenance → composition → document bundle. */
export function assemble(normalized: readonly NormalizedResource[], options: AssemblyOptions = OPTIONS, sources: readonly SourceInfo[] = [SOURCE_A, SOURCE_B], subject = casePatientFullUrl(CASE_ID)): { bundle: Bundle; deduped: DedupeResult } {
  const deduped = dedupe(normalized, options.disabledRules ? { disabledRules: options.disabledRules } : {});
  const provenances = buildProvenances({ resources: deduped.resources, merges: deduped.merges, sources, options });
  const composition = buildComposition({ subject, resources: deduped.resources, options, story: fixtureStory(), sources, merges: deduped.merges });
  return { bundle: buildDocumentBundle({ composition, resources: deduped.resources, provenances, options }), deduped };
}
