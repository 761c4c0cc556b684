/**
 * The case bundle of the fixture child from two care teams: the done-line ("the shared lab
 * result, document, imaging study and differently coded condition each appear once, with a
 * Provenance naming both sources"), near-misses separate, a closed document Bundle
 * (Composition first, no dangling urn:uuid), deterministic, and valid R4 (Medplum's
 * validator, zero errors).
 */
import type { Bundle, Composition, FhirResource, Provenance } from 'fhir/r4';
import { BUNDLE_IDENTIFIER_SYSTEM, unresolvedReferences } from '../../src/normalize/bundle';
import { casePatientFullUrl } from '../../src/normalize/case-patient';
import { SECTIONS } from '../../src/normalize/composition';
import { loadManifest } from '../fixtures/helpers';
import { assemble, CASE_ID, fixtureChild, fullUrlOf, OPTIONS, SOURCE_A, SOURCE_B } from './assembly-support';
import { bundleValidationErrors, bundleValidationWarnings } from '../support/fhir-validation';

const manifest = loadManifest();
const input = fixtureChild();
const { bundle, deduped } = assemble(input);
const entries = (bundle.entry ?? []).map((e) => ({ fullUrl: e.fullUrl ?? '', resource: e.resource as FhirResource }));
const urls = new Set(entries.map((e) => e.fullUrl));
const provenances = entries.map((e) => e.resource).filter((r): r is Provenance => r.resourceType === 'Provenance');

function pair(rule: string): { a: string; b: string } {
  const d = manifest.overlaps.duplicates.find((x) => x.rule === rule);
  if (!d) throw new Error(rule);
  return { a: d.a, b: d.b };
}

/** The one bundle entry holding the fact of pair (a at A, b at B), and the Provenance of its merge. */
function onceWithProvenance(a: string, b: string): { url: string; provenance: Provenance | undefined } {
  const ua = fullUrlOf(SOURCE_A, a);
  const ub = fullUrlOf(SOURCE_B, b);
  const present = [ua, ub].filter((u) => urls.has(u));
  expect(present).toHaveLength(1);
  const url = present[0] ?? '';
  const provenance = provenances.find((p) => p.activity?.coding?.[0]?.code === 'merge' && p.target.some((t) => t.reference === url));
  return { url, provenance };
}

describe('done-line: fixture child from two care teams', () => {
  it.each([
    ['shared lab result', 'Observation', pair('lab-exact')],
    ['lab result coded locally at B', 'Observation', pair('lab-local-code')],
    ['lab result in other units at B', 'Observation', pair('lab-unit-conversion')],
    ['document', 'DocumentReference', pair('document-same-content')],
    ['imaging study', 'ImagingStudy', pair('imaging-same-study-uid')],
    ['differently coded condition', 'Condition', { a: 'Condition/eQNUe6f25HbQtR0BZWfPg', b: 'Condition/171170220823728' }],
  ])('the %s appears once, with a Provenance naming both sources', (_label, _type, { a, b }) => {
    const { provenance } = onceWithProvenance(a, b);
    expect(provenance).toBeDefined();
    const what = (provenance?.entity ?? []).map((e) => e.what.identifier?.value ?? '');
    expect(what).toEqual(expect.arrayContaining([`${SOURCE_A.baseUrl}/${a}`, `${SOURCE_B.baseUrl}/${b}`]));
    expect(provenance?.entity?.every((e) => e.role === 'source')).toBe(true);
    expect(provenance?.policy?.[0]).toMatch(/dedupe-rule\//);
    // Merged raw resources are identified by their source URL, never by a urn:uuid that is not in the bundle.
    expect(provenance?.entity?.every((e) => e.what.reference === undefined)).toBe(true);
  });

  it('keeps every near-miss as two entries', () => {
    for (const n of manifest.overlaps.nearMisses) {
      const both = [fullUrlOf(SOURCE_A, n.a), fullUrlOf(SOURCE_B, n.b)];
      // the B side of the bone-age near-miss is merged into A's later study (same UID): that survivor is another entry.
      const survivorOf = (u: string): string => deduped.merges.find((m) => m.mergedKeys.some((k) => input.find((r) => r.key === k)?.fullUrl === u))?.survivor ?? u;
      const [x, y] = both.map(survivorOf);
      expect(x).not.toBe(y);
      expect(urls.has(x ?? '')).toBe(true);
      expect(urls.has(y ?? '')).toBe(true);
    }
  });

  it('has one Provenance per source pull set, targeting every resource that came from it', () => {
    const bySource = provenances.filter((p) => p.activity?.coding?.[0]?.code === 'receive');
    expect(bySource).toHaveLength(2);
    for (const [source, p] of [[SOURCE_A, bySource.find((x) => x.agent[0]?.who.display === SOURCE_A.name)], [SOURCE_B, bySource.find((x) => x.agent[0]?.who.display === SOURCE_B.name)]] as const) {
      expect(p?.entity?.[0]?.what.identifier).toEqual({ system: 'urn:ietf:rfc:3986', value: source.baseUrl });
      expect(p?.entity?.slice(1).map((e) => e.what.identifier?.value)).toEqual(source.pullIds);
      expect(p?.agent[0]?.type?.coding?.[0]?.code).toBe('transmitter');
      const own = deduped.resources.filter((r) => r.sourceId === source.sourceId).map((r) => r.fullUrl);
      expect(p?.target.map((t) => t.reference)).toEqual(expect.arrayContaining(own));
    }
    // B's Provenance also targets the survivors B's duplicates were merged into.
    const b = bySource.find((x) => x.agent[0]?.who.display === SOURCE_B.name);
    const merged = deduped.merges.filter((m) => m.mergedKeys.some((k) => k.startsWith(`${SOURCE_B.sourceId}|`))).map((m) => m.survivor);
    expect(b?.target.map((t) => t.reference)).toEqual(expect.arrayContaining(merged));
    expect(provenances).toHaveLength(2 + manifest.overlaps.duplicates.length);
  });
});

describe('the document Bundle', () => {
  it('is a document with identifier and timestamp, Composition first, then its subject', () => {
    expect(bundle.type).toBe('document');
    expect(bundle.identifier).toEqual({ system: BUNDLE_IDENTIFIER_SYSTEM, value: OPTIONS.bundleId });
    expect(bundle.timestamp).toBe(OPTIONS.timestamp);
    const composition = entries[0]?.resource as Composition;
    expect(composition.resourceType).toBe('Composition');
    expect(composition.subject?.reference).toBe(casePatientFullUrl(CASE_ID));
    expect(entries[1]?.fullUrl).toBe(casePatientFullUrl(CASE_ID));
    expect(urls.size).toBe(entries.length);
    expect(entries.filter((e) => e.resource.resourceType === 'Composition')).toHaveLength(1);
    for (const e of entries) expect(e.fullUrl).toBe(`urn:uuid:${e.resource.id ?? ''}`);
  });

  it('carries every resource of the case once (after de-duplication), plus Composition, Device and Provenance', () => {
    expect(entries.length).toBe(deduped.resources.length + 1 + 1 + provenances.length);
  });

  it('has no unresolved reference (every urn:uuid resolves to an entry)', () => {
    expect(unresolvedReferences(bundle)).toEqual([]);
  });

  it('has the IPS-style sections with narrative, entries or emptyReason', () => {
    const composition = entries[0]?.resource as Composition;
    const codes = (composition.section ?? []).map((s) => s.code?.coding?.[0]?.code);
    expect(codes).toEqual(SECTIONS.filter((s) => !s.optional).map((s) => s.code));
    for (const s of composition.section ?? []) {
      // The family's words (the story sections) are in no resource: the rest is made from the entries.
      expect(s.text?.status).toBe(['42349-1', '10164-2'].includes(s.code?.coding?.[0]?.code ?? '') ? 'additional' : 'generated');
      expect(s.text?.div).toMatch(/^<div xmlns="http:\/\/www.w3.org\/1999\/xhtml">.*<\/div>$/s);
      expect((s.entry?.length ?? 0) > 0 || s.emptyReason !== undefined || ['42349-1', '10164-2'].includes(s.code?.coding?.[0]?.code ?? '')).toBe(true);
      if (s.entry?.length) expect(s.emptyReason).toBeUndefined();
    }
    const section = (code: string) => composition.section?.find((s) => s.code?.coding?.[0]?.code === code);
    expect(section('11450-4')?.entry?.length).toBeGreaterThan(0);
    expect(section('11348-0')?.text?.div).toMatch(/Vitamin D deficiency/i); // the resolved episode
    expect(section('42349-1')?.text?.div).toMatch(/insulin pump/);
    expect(section('18748-4')?.entry?.length).toBeGreaterThanOrEqual(3);
    // No Procedure/Immunization-less sections here; allergies list the merged allergy once with both sources.
    expect(section('48765-2')?.text?.div).toMatch(/amoxicillin.*Big Sky Children&#39;s Hospital; Gallatin Valley Clinic/);
  });

  it('validates against R4 with zero errors (Medplum validator), as a whole and entry by entry', () => {
    expect(bundleValidationErrors(bundle)).toEqual([]);
    const warnings = bundleValidationWarnings(bundle).filter((w) => !/Invalid reference: got "urn:uuid:/.test(w));
    process.stdout.write(`validator warnings: ${warnings.length}\n${[...new Set(warnings)].slice(0, 40).join('\n')}\n`);
  });
});

describe('determinism', () => {
  it('differs between two assemblies only in bundleId and timestamp', () => {
    const other = assemble(input, { bundleId: 'another-bundle-id', timestamp: '2027-01-05T08:30:00.000Z' }).bundle;
    const text = JSON.stringify(other).split('another-bundle-id').join(OPTIONS.bundleId).split('2027-01-05T08:30:00.000Z').join(OPTIONS.timestamp);
    expect(text).toBe(JSON.stringify(bundle));
  });

  it('does not depend on the order of the input', () => {
    const reversed = [...input].reverse();
    expect(JSON.stringify(assemble(reversed).bundle)).toBe(JSON.stringify(bundle));
  });

  it('undoes a rule on re-assembly with the rule switched off', () => {
    const off = assemble(input, { ...OPTIONS, disabledRules: ['imagingstudy:study-uid'] });
    const img = pair('imaging-same-study-uid');
    const offUrls = new Set((off.bundle.entry ?? []).map((e) => e.fullUrl));
    expect(offUrls.has(fullUrlOf(SOURCE_A, img.a)) && offUrls.has(fullUrlOf(SOURCE_B, img.b))).toBe(true);
    expect(unresolvedReferences(off.bundle)).toEqual([]);
    expect((off.bundle as Bundle).entry?.length).toBe((bundle.entry?.length ?? 0) + 1 - 1); // +1 study, -1 merge Provenance
  });
});
