/**
 * De-duplication of the fixture child from two care teams: exactly the manifest's
 * duplicates merge (one MergeRecord each, under the expected rule), every near-miss stays
 * apart, references to merged-away resources are redirected, and switching a rule off
 * leaves its duplicates unmerged.
 */
import type { Condition, DocumentReference, ImagingStudy, Immunization, Observation } from 'fhir/r4';
import { DEDUPE_RULE_NAMES, dedupe } from '../../src/normalize/dedupe/index';
import type { DedupeResult, NormalizedResource } from '../../src/normalize/types';
import { loadManifest } from '../fixtures/helpers';
import { fixtureChild, fullUrlOf, keyOf, SOURCE_A, SOURCE_B } from './assembly-support';

const manifest = loadManifest();

/** Manifest rule → our rule name. */
const RULE_OF: Readonly<Record<string, string>> = {
  'lab-exact': 'observation:code-time-value',
  'lab-local-code': 'observation:code-time-value',
  'lab-unit-conversion': 'observation:code-time-value',
  'condition-same-concept-and-onset': 'condition:code-onset',
  'allergy-same-substance-and-onset': 'allergyintolerance:code',
  'immunization-same-vaccine-and-date': 'immunization:cvx-date',
  'document-same-content': 'documentreference:content',
  'imaging-same-study-uid': 'imagingstudy:study-uid',
};

function mergeFor(result: DedupeResult, a: string, b: string): { survivor: string; merged: string[]; rule: string } | undefined {
  const ka = keyOf(SOURCE_A, a);
  const kb = keyOf(SOURCE_B, b);
  const m = result.merges.find((x) => [x.survivorKey, ...x.mergedKeys].includes(ka));
  if (!m || ![m.survivorKey, ...m.mergedKeys].includes(kb)) return undefined;
  return { survivor: m.survivorKey, merged: [...m.mergedKeys], rule: m.rule };
}

function byUrl(resources: readonly NormalizedResource[]): Map<string, NormalizedResource> {
  return new Map(resources.map((r) => [r.fullUrl, r]));
}

describe.each([
  ['values converted to the canonical unit by the normalizer', true],
  ['molar values left as reported (mmol/L beside both LOINC codes)', false],
])('fixture child, %s', (_label, convertUnits) => {
  const input = fixtureChild({ convertUnits });
  const inputSnapshot = JSON.stringify(input);
  const result = dedupe(input);

  it('merges exactly the manifest duplicates, one MergeRecord each, under the expected rule', () => {
    for (const d of manifest.overlaps.duplicates) {
      const m = mergeFor(result, d.a, d.b);
      expect({ pair: `${d.a} ~ ${d.b}`, rule: m?.rule }).toEqual({ pair: `${d.a} ~ ${d.b}`, rule: RULE_OF[d.rule] });
      expect(m?.merged).toHaveLength(1);
    }
    expect(result.merges).toHaveLength(manifest.overlaps.duplicates.length);
    expect(result.resources).toHaveLength(input.length - manifest.overlaps.duplicates.length);
  });

  it('keeps every near-miss apart', () => {
    const survivorOf = (key: string): string => result.merges.find((m) => m.mergedKeys.includes(key))?.survivorKey ?? key;
    for (const n of manifest.overlaps.nearMisses) {
      expect({ pair: n.rule, merged: mergeFor(result, n.a, n.b) }).toEqual({ pair: n.rule, merged: undefined });
      // The B side of the bone-age near-miss is itself a duplicate of A's later study; the two stay apart anyway.
      expect(survivorOf(keyOf(SOURCE_A, n.a))).not.toBe(survivorOf(keyOf(SOURCE_B, n.b)));
    }
  });

  it('never merges Patients and never changes the input', () => {
    expect(result.resources.filter((r) => r.resource.resourceType === 'Patient')).toHaveLength(3);
    expect(JSON.stringify(input)).toBe(inputSnapshot);
  });

  it('redirects every reference to a merged-away resource to its survivor', () => {
    const gone = new Set(input.map((r) => r.fullUrl).filter((u) => !byUrl(result.resources).has(u)));
    expect(gone.size).toBe(manifest.overlaps.duplicates.length);
    const text = JSON.stringify(result.resources.map((r) => r.resource));
    for (const u of gone) expect(text.includes(`"${u}"`)).toBe(false);
  });

  it('unions what the duplicates add', () => {
    const urls = byUrl(result.resources);
    const find = (a: string, b: string): NormalizedResource => {
      const m = mergeFor(result, a, b);
      const s = result.merges.find((x) => x.survivorKey === m?.survivor);
      const r = s ? urls.get(s.survivor) : undefined;
      if (!r) throw new Error(`no survivor for ${a}`);
      return r;
    };
    const dup = (rule: string): { a: string; b: string } => {
      const d = manifest.overlaps.duplicates.find((x) => x.rule === rule);
      if (!d) throw new Error(rule);
      return d;
    };
    // Condition: SNOMED (A) and ICD-10-CM (B) codings on one Condition.
    const t1d = find('Condition/eQNUe6f25HbQtR0BZWfPg', 'Condition/171170220823728').resource as Condition;
    expect(t1d.code?.coding?.map((c) => c.code)).toEqual(expect.arrayContaining(['46635009', 'E10.9']));
    // Imaging: one study with both archives' DICOMweb endpoints (study and series level).
    const img = dup('imaging-same-study-uid');
    const study = find(img.a, img.b).resource as ImagingStudy;
    expect(new Set(study.endpoint?.map((e) => e.reference))).toEqual(new Set([fullUrlOf(SOURCE_A, 'Endpoint/e0aONkiYcmjQDNRKh6amQ'), fullUrlOf(SOURCE_B, 'Endpoint/104262337379531')]));
    expect(study.series?.[0]?.endpoint).toHaveLength(2);
    expect(study.identifier?.filter((i) => i.system !== 'urn:dicom:uid')).toHaveLength(2); // both accession numbers
    expect(study.procedureCode?.flatMap((p) => p.coding?.map((c) => c.code))).toEqual(expect.arrayContaining(['39714003', '77072']));
    // Immunization: the primary-source record survives; no reportOrigin carried onto it.
    const imm = dup('immunization-same-vaccine-and-date');
    const shot = find(imm.a, imm.b).resource as Immunization;
    expect(shot.primarySource).toBe(true);
    expect(shot.reportOrigin).toBeUndefined();
    // Document: one DocumentReference, content kept once.
    const doc = dup('document-same-content');
    const letter = find(doc.a, doc.b).resource as DocumentReference;
    expect(letter.content).toHaveLength(1);
    // Lab: the local code, the mapped LOINC and (molar case) both LOINC codes on one result.
    const glu = dup('lab-unit-conversion');
    const glucose = find(glu.a, glu.b).resource as Observation;
    expect(glucose.code.coding?.map((c) => c.code)).toEqual(expect.arrayContaining(['2345-7', '14749-6', 'GLU']));
  });

  it('leaves every resource that referenced a merged-away resource pointing at its survivor', () => {
    const redirect = new Map<string, string>();
    for (const m of result.merges) {
      for (const k of m.mergedKeys) redirect.set(input.find((r) => r.key === k)?.fullUrl ?? '', m.survivor);
    }
    const out = byUrl(result.resources);
    let referencing = 0;
    let redirected = 0;
    for (const r of input) {
      const after = out.get(r.fullUrl);
      if (!after) continue;
      const afterText = JSON.stringify(after.resource);
      for (const [from, to] of redirect) {
        if (!JSON.stringify(r.resource).includes(`"${from}"`)) continue;
        referencing++;
        if (afterText.includes(`"${to}"`) && !afterText.includes(`"${from}"`)) redirected++;
      }
    }
    expect(redirected).toBe(referencing); // A's reports list A's results: redirected when B's copy survives
  });
});

describe('disabledRules', () => {
  const input = fixtureChild();

  it('leaves the duplicates of a switched-off rule unmerged, and only those', () => {
    const all = dedupe(input);
    const noLabs = dedupe(input, { disabledRules: ['observation:code-time-value'] });
    const labMerges = all.merges.filter((m) => m.rule === 'observation:code-time-value').length;
    expect(labMerges).toBe(4);
    expect(noLabs.merges).toHaveLength(all.merges.length - labMerges);
    expect(noLabs.resources).toHaveLength(all.resources.length + labMerges);
    const none = dedupe(input, { disabledRules: DEDUPE_RULE_NAMES });
    expect(none.merges).toEqual([]);
    expect(none.resources.map((r) => r.resource)).toEqual(input.map((r) => r.resource));
  });

  it('refuses unknown rule names', () => {
    expect(() => dedupe(input, { disabledRules: ['observation:typo'] })).toThrow(/Unknown dedupe rule/);
  });
});
