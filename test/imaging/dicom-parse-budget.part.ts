/**
 * A DICOM header of millions of tiny elements or empty items (8 bytes each in the file) must not take
 * the parsing thread's heap: in a worker thread, running out of heap can abort the whole process
 * (https://github.com/nodejs/node/issues/47224), i.e. the ingest worker. The parse has a budget
 * (src/imaging/dicom-parse-budget.ts); past it the file is `too-large`, a verdict.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { withHeaderReadBudget } from '../../src/imaging/dicom-parse-budget';
import { corpusFiles, element, readCorpus, tinyPrivateElements } from './support';

const SOP_CLASS = '1.2.840.10008.5.1.4.1.1.7';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** Preamble, `DICM` and File Meta Information (explicit VR little endian) of a file of `sop`. */
function part10Head(sop = '1.2.3.4.5.6.1'): Buffer {
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, element(0x0002, 0x0002, 'UI', SOP_CLASS), element(0x0002, 0x0003, 'UI', sop), element(0x0002, 0x0010, 'UI', EXPLICIT_LE)]);
}

/** The identifying elements of an image (a real-looking header), then 16 bytes of Pixel Data. */
function identity(): Buffer {
  return Buffer.concat([
    element(0x0008, 0x0016, 'UI', SOP_CLASS),
    element(0x0008, 0x0018, 'UI', '1.2.3.4.5.6.1'),
    element(0x0008, 0x0060, 'CS', 'OT'),
  ]);
}
function uidsAndPixels(): Buffer {
  const pixelHead = Buffer.alloc(12);
  pixelHead.writeUInt16LE(0x7fe0, 0);
  pixelHead.writeUInt16LE(0x0010, 2);
  pixelHead.write('OW', 4, 'latin1');
  pixelHead.writeUInt32LE(16, 8);
  return Buffer.concat([element(0x0020, 0x000d, 'UI', '1.2.3.4.5'), element(0x0020, 0x000e, 'UI', '1.2.3.4.5.6'), pixelHead, Buffer.alloc(16)]);
}


/** A private sequence (undefined length) of `count` empty items of defined length: 8 bytes each. */
function emptyItems(count: number): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16LE(0x0009, 0);
  head.writeUInt16LE(0x1010, 2);
  head.write('SQ', 4, 'latin1');
  head.writeUInt32LE(0xffffffff, 8);
  const items = Buffer.alloc(count * 8);
  for (let i = 0; i < count; i++) {
    items.writeUInt16LE(0xfffe, i * 8);
    items.writeUInt16LE(0xe000, i * 8 + 2);
  }
  const end = Buffer.alloc(8);
  end.writeUInt16LE(0xfffe, 0);
  end.writeUInt16LE(0xe0dd, 2);
  return Buffer.concat([head, items, end]);
}

/** A well-formed Part 10 file whose data set holds `filler` between its first elements and its UIDs. */
const hostile = (filler: Buffer): Buffer => Buffer.concat([part10Head(), identity(), filler, uidsAndPixels()]);

describe('a header too large to hold in memory is a verdict, not a crash', () => {
  it('800,000 empty elements (a 6 MB file): too-large, with a reason that says why', () => {
    const result = parseDicomHeader(hostile(tinyPrivateElements(800_000)));
    expect(result).toEqual({ ok: false, code: 'too-large', reason: expect.stringMatching(/more elements and items than a DICOM header/) });
  });

  it('600,000 empty sequence items (a 5 MB file): too-large', () => {
    const result = parseDicomHeader(hostile(emptyItems(600_000)));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.code).toBe('too-large');
  });

  it('below the budget the same shapes still parse, and every file of the shared corpus too', () => {
    const fine = parseDicomHeader(hostile(tinyPrivateElements(100_000)));
    expect(fine.ok && fine.header.studyInstanceUid).toBe('1.2.3.4.5');
    for (const name of corpusFiles()) {
      const bytes = readCorpus(name);
      // A budget a tenth of the real one leaves every genuine header room to spare.
      expect(withHeaderReadBudget(() => parseDicomHeader(bytes), 200_000)).toEqual(parseDicomHeader(bytes));
    }
  });

  it('the budget counts only inside a parse: the parser works normally after a refusal', () => {
    expect(parseDicomHeader(hostile(tinyPrivateElements(800_000))).ok).toBe(false);
    expect(parseDicomHeader(hostile(tinyPrivateElements(10))).ok).toBe(true);
  });
});

describe('the process that parses survives such a file', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-budget-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * A separate Node process (as the ingest worker is) parses the file with the real DicomWorkerPool
   * (worker thread, 256 MB heap) and prints the result. The TypeScript sources are loaded by
   * transpiling on require, as `src/util/worker-source.ts` does for worker threads under Jest.
   */
  async function parseInChildProcess(file: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
    const pool = path.resolve(__dirname, '../../src/imaging/dicom-worker-pool.ts');
    const script = `
const fs = require('node:fs');
const { createRequire } = require('node:module');
const localRequire = createRequire(${JSON.stringify(pool)});
const ts = localRequire('typescript');
require.extensions['.ts'] = function (module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};
const { DicomWorkerPool } = localRequire(${JSON.stringify(pool)});
const pool = new DicomWorkerPool({ timeoutMs: 60000 });
pool.parse(${JSON.stringify(file)}).then(async (result) => {
  process.stdout.write(JSON.stringify(result));
  await pool.close();
});
`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(0, 64 * 1024)));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return { code, signal, stdout, stderr };
  }

  it('4 million empty elements (a 32 MB upload, far below MAX_UPLOAD_FILE_BYTES): the pool answers too-large, the process lives on', async () => {
    const file = path.join(dir, 'many-elements.dcm');
    fs.writeFileSync(file, hostile(tinyPrivateElements(4_000_000)));
    const run = await parseInChildProcess(file);
    expect({ code: run.code, signal: run.signal, stderr: run.stderr.includes('heap out of memory') ? 'heap out of memory' : '' }).toEqual({
      code: 0,
      signal: null,
      stderr: '',
    });
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, code: 'too-large' });
  }, 120_000);
});
