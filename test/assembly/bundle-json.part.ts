import type { Bundle } from 'fhir/r4';
import { bundleJsonByteParts, bundleJsonParts } from '../../src/assembly/bundle-json';

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

it('keeps the head and the first entry in the first part, however small the parts (readBundleHead reads only it)', () => {
  const bundle = bundleOf(20);
  const first = [...bundleJsonParts(bundle, 1)][0] ?? '';
  const head = JSON.parse(`${first}]}`) as { entry: unknown[] };
  expect(head.entry.length).toBeGreaterThan(0);
  const firstBytes = Buffer.from([...bundleJsonByteParts(bundle, 1)][0] ?? new Uint8Array()).toString('utf8');
  expect((JSON.parse(`${firstBytes}]}`) as { entry: unknown[] }).entry.length).toBeGreaterThan(0);
});

describe('as UTF-8 bytes', () => {
  const text = (parts: readonly Uint8Array[]): string => Buffer.concat(parts).toString('utf8');

  it.each([0, 1, 7, 500])('joins to JSON.stringify of a bundle of %i entries (non-ASCII text included), for any part size', (entries) => {
    const bundle = bundleOf(entries);
    const whole = JSON.stringify(bundle);
    for (const partBytes of [1, 100, 10_000, 1 << 24]) {
      const parts = [...bundleJsonByteParts(bundle, partBytes)];
      expect(text(parts)).toBe(whole);
      if (partBytes >= Buffer.byteLength(whole)) expect(parts).toHaveLength(1);
    }
  });

  it('cuts a large bundle into parts of about the size asked, each whole UTF-8 text ending after an entry', () => {
    const bundle = bundleOf(500);
    const parts = [...bundleJsonByteParts(bundle, 4_000)];
    expect(parts.length).toBeGreaterThan(5);
    // The first part holds the head and the first run of entries whatever its size (readBundleHead).
    for (const part of parts.slice(1, -1)) {
      expect(part.byteLength).toBeLessThanOrEqual(4_400); // a run may come out a little over its estimate
      expect(part.byteLength).toBeGreaterThan(2_000);
    }
    for (const part of parts.slice(1, -1)) {
      // Decoding each part alone gives no replacement character: no multi-byte character is cut.
      const alone = Buffer.from(part).toString('utf8');
      expect(alone).not.toContain('\uFFFD');
      expect(alone.startsWith(',{"fullUrl"')).toBe(true);
      expect(alone.endsWith('}}')).toBe(true);
    }
  });

  it('gives each part its own ArrayBuffer, so it can be transferred to another thread', () => {
    const parts = [...bundleJsonByteParts(bundleOf(300), 2_000)];
    const buffers = new Set(parts.map((p) => p.buffer));
    expect(buffers.size).toBe(parts.length);
    for (const part of parts) expect(part.byteOffset).toBe(0);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(parts[0], [parts[0]?.buffer as ArrayBuffer]);
    // Transferred, not copied: the sender's view is detached.
    expect(parts[0]?.byteLength).toBe(0);
    port1.close();
    port2.close();
  });

  it('writes an entry larger than a part as a part of its own', () => {
    const bundle = bundleOf(3);
    const big = bundle.entry?.[1]?.resource as { code: { text: string } };
    big.code.text = 'é'.repeat(5_000);
    const whole = JSON.stringify(bundle);
    const parts = [...bundleJsonByteParts(bundle, 1_000)];
    expect(text(parts)).toBe(whole);
    expect(Math.max(...parts.map((p) => p.byteLength))).toBeGreaterThan(10_000);
  });

  it('releases each entry once serialised when asked, the text unchanged', () => {
    const bundle = bundleOf(300);
    const whole = JSON.stringify(bundle);
    const parts = [...bundleJsonByteParts(bundle, 2_000, { releaseEntries: true })];
    expect(text(parts)).toBe(whole);
    expect(bundle.entry?.every((e) => e.resource === undefined)).toBe(true);
  });
});
