/**
 * Where a `node:worker_threads` script comes from, for this build: the compiled `.js` next to the
 * module that starts it (`dist/src/...` after `tsc`), else — under Jest, where only the `.ts`
 * source exists and worker threads cannot load TypeScript — a small `eval` bootstrap that registers
 * a `.ts` loader using the `typescript` package's `transpileModule` (a dev dependency, present
 * wherever tests run). Tests thus run the real worker with no build step; production never takes
 * that path.
 * @see https://nodejs.org/docs/latest-v20.x/api/worker_threads.html
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';

/** Where the worker code comes from: a script file, or code to `eval`. */
export type WorkerSource = { readonly file: string } | { readonly eval: string };

/** The worker script `<name>.js` in `dir`, else the Jest bootstrap of `<name>.ts`. */
export function workerSourceFor(dir: string, name: string): WorkerSource {
  const js = path.join(dir, `${name}.js`);
  if (fs.existsSync(js)) return { file: js };
  const ts = path.join(dir, `${name}.ts`);
  if (fs.existsSync(ts)) return { eval: typeScriptBootstrap(ts) };
  throw new Error(`${name}.js not found in ${dir}; build with tsc first`);
}

/**
 * `eval` code that loads a `.ts` worker by transpiling on require (tests only). Each module's output
 * is cached on disk under the OS temp folder, keyed by a hash of its source, the compiler options and
 * TypeScript's version: loading `typescript` and transpiling a worker's ~100 modules cost a thread
 * ~2.5 s of CPU at each start, in every test file that starts one; with the cache a start reads files.
 * A changed module has a new key; the cache is written atomically (temp file + rename).
 */
function typeScriptBootstrap(entry: string): string {
  return `
const { createRequire } = require('node:module');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const localRequire = createRequire(${JSON.stringify(entry)});
const tsVersion = JSON.parse(fs.readFileSync(localRequire.resolve('typescript/package.json'), 'utf8')).version;
const cacheDir = path.join(os.tmpdir(), 'sob-worker-ts-cache');
const options = { module: 'CommonJS', target: 'ES2022', esModuleInterop: true };
let ts;
function transpile(source, filename) {
  ts ??= localRequire('typescript');
  return ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind[options.module], target: ts.ScriptTarget[options.target], esModuleInterop: options.esModuleInterop },
  }).outputText;
}
require.extensions['.ts'] = function (module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const key = createHash('sha256').update(tsVersion).update(JSON.stringify(options)).update(filename).update('\0').update(source).digest('hex');
  const cached = path.join(cacheDir, key + '.js');
  let output;
  try {
    output = fs.readFileSync(cached, 'utf8');
  } catch {
    output = transpile(source, filename);
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const temp = cached + '.' + process.pid + '.' + Math.random().toString(36).slice(2);
      fs.writeFileSync(temp, output);
      fs.renameSync(temp, cached);
    } catch {
      // A cache that cannot be written only costs the next start its transpiling.
    }
  }
  module._compile(output, filename);
};
localRequire(${JSON.stringify(entry)});
`;
}
