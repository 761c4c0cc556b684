/**
 * `npm run demo` end to end, as a newcomer runs it: the compiled script (built by `npm test`'s
 * tsc step) in its own process, embedded PGlite under a fresh DATA_DIR, the machine's Redis. It
 * must exit 0 by itself (leaving nothing running) and report one DiagnosticReport in the EHR.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEST_REDIS_URL } from '../support/redis-url';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'dist', 'scripts', 'demo.js');

function runDemo(dataDir: string): Promise<{ code: number | null; out: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, REDIS_URL: TEST_REDIS_URL };
  delete env.DATABASE_URL;
  delete env.NODE_OPTIONS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

it('runs the whole journey twice in a row and exits 0 each time', async () => {
  expect(fs.existsSync(SCRIPT)).toBe(true);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-demo-'));
  try {
    for (let run = 1; run <= 2; run += 1) {
      const { code, out } = await runDemo(dataDir);
      expect({ run, code, tail: code === 0 ? '' : out.slice(-3000) }).toEqual({ run, code: 0, tail: '' });
      expect(out).toMatch(/pull complete: \d+ resources/);
      expect(out).toMatch(/left out: balanced/);
      expect(out).toMatch(/the bone-age study appears once, 2 series, origins local-ehr \+ family-upload/);
      expect(out).toMatch(/delivered in \d+ attempt\(s\): DiagnosticReport\/\S+/);
      expect(out).toMatch(/→ 1 DiagnosticReport/);
      const saved = JSON.parse(fs.readFileSync(path.join(dataDir, 'out', 'referring-ehr-diagnostic-report.json'), 'utf8')) as { entry?: { resource: { resourceType: string; status: string } }[] };
      expect(saved.entry?.map((e) => [e.resource.resourceType, e.resource.status])).toEqual([['DiagnosticReport', 'final']]);
      expect(fs.readFileSync(path.join(dataDir, 'out', 'report.pdf')).subarray(0, 5).toString()).toBe('%PDF-');
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, 240_000);
