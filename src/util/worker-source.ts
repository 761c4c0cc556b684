/**
 * Where a `node:worker_threads` script comes from, for this build: the compiled `.js` next to the
 * module that starts it (`dist/src/...` after `tsc`), else — under ts-jest, where only the `.ts`
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

/** The worker script `<name>.js` in `dir`, else the ts-jest bootstrap of `<name>.ts`. */
export function workerSourceFor(dir: string, name: string): WorkerSource {
  const js = path.join(dir, `${name}.js`);
  if (fs.existsSync(js)) return { file: js };
  const ts = path.join(dir, `${name}.ts`);
  if (fs.existsSync(ts)) return { eval: typeScriptBootstrap(ts) };
  throw new Error(`${name}.js not found in ${dir}; build with tsc first`);
}

/** `eval` code that loads a `.ts` worker by transpiling on require (tests only). */
function typeScriptBootstrap(entry: string): string {
  return `
const { createRequire } = require('node:module');
const fs = require('node:fs');
const localRequire = createRequire(${JSON.stringify(entry)});
const ts = localRequire('typescript');
require.extensions['.ts'] = function (module, filename) {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};
localRequire(${JSON.stringify(entry)});
`;
}
