import type { Bundle } from 'fhir/r4';
import { bundleJsonParts } from '../../src/assembly/bundle-json';

/** The stored text of a bundle must be exactly what JSON.stringify gives, however it is cut. */
function bundleOf(entries: number): Bundle {
  return {
    resourceType: 'Bundle',
    identifier: { system: 'urn:example', value: 'b-1' },
    type: 'document',
    timestamp: '2026-11-01T00:00:00Z',
    entry: Array.from({ length: entries }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-5000-8000-${String(i).padStart(12, '0')}`,
      resource: { resourceType: 'Observation', id: String(i), status: 'final', code: { text: `Ärger "quoted" ${i} \u2028` } },
    })),
  };
}

it.each([0, 1, 7, 500])('joins to JSON.stringify of a bundle of %i entries, for any part size', (entries) => {
  const bundle = bundleOf(entries);
  const whole = JSON.stringify(bundle);
  for (const partChars of [1, 100, 10_000, 1 << 24]) {
    const parts = [...bundleJsonParts(bundle, partChars)];
    expect(parts.join('')).toBe(whole);
    if (partChars >= whole.length) expect(parts).toHaveLength(1);
  }
});

it('cuts a large bundle into several parts, never inside an entry', () => {
  const bundle = bundleOf(500);
  const parts = [...bundleJsonParts(bundle, 4_000)];
  expect(parts.length).toBeGreaterThan(5);
  for (const part of parts.slice(1, -1)) expect(part.startsWith(',{"fullUrl"')).toBe(true);
});

it('writes a bundle without entries as JSON.stringify does', () => {
  const bundle: Bundle = { resourceType: 'Bundle', type: 'document' };
  expect([...bundleJsonParts(bundle)].join('')).toBe(JSON.stringify(bundle));
});

it('releases each entry once it is serialised when the caller hands the bundle over, the text unchanged', () => {
  const bundle = bundleOf(300);
  const whole = JSON.stringify(bundle);
  const entries = bundle.entry ?? [];
  const seen: number[] = [];
  const parts: string[] = [];
  for (const part of bundleJsonParts(bundle, 2_000, { releaseEntries: true })) {
    parts.push(part);
    // Entries already written are gone from the bundle while later parts are still to come.
    seen.push(entries.filter((e) => e.resource === undefined).length);
  }
  expect(parts.join('')).toBe(whole);
  expect(seen.length).toBeGreaterThan(5);
  expect(seen[0]).toBeGreaterThan(0);
  expect(seen[0]).toBeLessThan(300);
  expect(entries).toHaveLength(300);
  expect(entries.every((e) => e.resource === undefined)).toBe(true);
});

it('leaves the bundle as it was by default', () => {
  const bundle = bundleOf(50);
  [...bundleJsonParts(bundle, 500)].join('');
  expect(bundle.entry?.every((e) => e.resource !== undefined)).toBe(true);
});
