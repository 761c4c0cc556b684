/**
 * Fuzzing the header parser with mutations of the shared corpus (seeded, so every run tests the same
 * cases): truncations, flipped bytes, damaged element lengths, inserted and deleted bytes. The parser
 * must never throw, always answer in time, and answer with a well-formed result.
 */
import { performance } from 'node:perf_hooks';
import { parseDicomBuffer } from '../../src/imaging/dicom-file';
import { type DicomParseResult, parseDicomHeader } from '../../src/imaging/dicom-header';
import { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { Rng } from '../../src/fixtures/prng';
import { corpusFiles, readCorpus } from './support';

const SEED = 0x5eed_d1c0;
const CASES = 400;
/**
 * Far above any real parse (well under 50 ms for these files): a hang, not slowness, nor a loaded
 * host holding this process off its core (2 s was within reach of that).
 */
const HANG_MS = 10_000;

type Mutation = { readonly kind: string; readonly bytes: Buffer };

/** Offsets where an explicit-VR element header seems to start (two upper-case letters after a tag). */
function elementOffsets(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let i = 132; i + 8 <= bytes.length && out.length < 200; i += 2) {
    const a = bytes[i + 4] ?? 0;
    const b = bytes[i + 5] ?? 0;
    if (a >= 0x41 && a <= 0x5a && b >= 0x41 && b <= 0x5a) out.push(i);
  }
  return out;
}

function mutate(source: Buffer, rng: Rng): Mutation {
  const bytes = Buffer.from(source);
  const kind = rng.int(0, 5);
  switch (kind) {
    case 0: {
      const at = rng.int(0, Math.min(bytes.length, 4096));
      return { kind: `truncate@${at}`, bytes: bytes.subarray(0, at) };
    }
    case 1: {
      const n = rng.int(1, 16);
      const limit = Math.min(bytes.length, 8192);
      for (let k = 0; k < n; k++) bytes[rng.int(0, limit - 1)] = rng.int(0, 255);
      return { kind: `flip×${n}`, bytes };
    }
    case 2: {
      const offsets = elementOffsets(bytes);
      const at = offsets[rng.int(0, Math.max(0, offsets.length - 1))] ?? 132;
      const choice = rng.int(0, 3);
      const value = [0, 0xffff, rng.int(0, 0xffff), 1][choice] ?? 0;
      if (at + 8 <= bytes.length) bytes.writeUInt16LE(value, at + 6);
      return { kind: `short-length@${at}=${value}`, bytes };
    }
    case 3: {
      const offsets = elementOffsets(bytes);
      const at = offsets[rng.int(0, Math.max(0, offsets.length - 1))] ?? 132;
      const value = [0xffffffff, 0x7fffffff, rng.nextUint32(), 0][rng.int(0, 3)] ?? 0;
      if (at + 12 <= bytes.length) bytes.writeUInt32LE(value >>> 0, at + 8);
      return { kind: `long-length@${at}=${value}`, bytes };
    }
    case 4: {
      const at = rng.int(132, Math.max(132, Math.min(bytes.length, 4096)));
      const n = rng.int(1, 9);
      return { kind: `insert ${n}@${at}`, bytes: Buffer.concat([bytes.subarray(0, at), Buffer.alloc(n, rng.int(0, 255)), bytes.subarray(at)]) };
    }
    default: {
      const at = rng.int(132, Math.max(132, Math.min(bytes.length - 1, 4096)));
      const n = rng.int(1, 9);
      return { kind: `delete ${n}@${at}`, bytes: Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + n)]) };
    }
  }
}

function cases(): Array<Mutation & { file: string }> {
  const rng = new Rng(SEED);
  const files = corpusFiles();
  const sources = new Map(files.map((f) => [f, readCorpus(f)]));
  return Array.from({ length: CASES }, (_, i) => {
    const file = files[i % files.length] ?? '';
    return { file, ...mutate(sources.get(file) ?? Buffer.alloc(0), rng) };
  });
}

function wellFormed(result: DicomParseResult): boolean {
  if (result.ok) return typeof result.header.studyInstanceUid === 'string' && result.header.studyInstanceUid.length > 0;
  return typeof result.reason === 'string' && result.reason.length > 0 && typeof result.code === 'string';
}

describe(`fuzz: ${CASES} seeded mutations of the corpus`, () => {
  const all = cases();

  it('never throws, never stalls, always answers with a well-formed result (in-process)', () => {
    const outcomes = new Map<string, number>();
    for (const c of all) {
      for (const parse of [() => parseDicomHeader(c.bytes), () => parseDicomBuffer(c.bytes, { headBytes: 512 })]) {
        const start = performance.now();
        let result: DicomParseResult;
        try {
          result = parse();
        } catch (err) {
          throw new Error(`${c.file} ${c.kind}: threw ${String(err)}`);
        }
        const ms = performance.now() - start;
        if (ms > HANG_MS) throw new Error(`${c.file} ${c.kind}: took ${ms.toFixed(0)} ms`);
        if (!wellFormed(result)) throw new Error(`${c.file} ${c.kind}: malformed result ${JSON.stringify(result)}`);
        const key = result.ok ? 'ok' : result.code;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    }
    // The mutations reach the failure paths, not only the happy one.
    expect(outcomes.get('ok')).toBeGreaterThan(0);
    expect((outcomes.get('truncated') ?? 0) + (outcomes.get('malformed') ?? 0)).toBeGreaterThan(0);
    expect(outcomes.get('not-part10')).toBeGreaterThan(0);
  });

  it('a sample through the worker pool: answers, no crash, no timeout', async () => {
    const pool = new DicomWorkerPool({ timeoutMs: HANG_MS, size: 2 });
    try {
      const sample = all.filter((_, i) => i % 8 === 0);
      const results = await Promise.all(sample.map((c) => pool.parse(c.bytes)));
      for (const [i, result] of results.entries()) {
        expect([sample[i]?.kind, wellFormed(result), !result.ok && (result.code === 'timeout' || result.code === 'worker-failed')]).toEqual([sample[i]?.kind, true, false]);
      }
      expect(results).toEqual(sample.map((c) => parseDicomHeader(c.bytes)));
    } finally {
      await pool.close();
    }
  });
});
