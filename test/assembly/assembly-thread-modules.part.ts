/**
 * The assembly thread loads only what building a bundle needs: each thread start (one per busy
 * spell, see `assembly-thread.ts`) pays for every module it reaches. Walks the worker's runtime
 * imports (`import type` and type-only specifiers are erased by the compiler) from the TypeScript
 * sources and checks that the rule loaders' schema library is not among them (~50 ms of start and
 * ~10 MB of RSS per thread).
 */
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '../../src');
const IMPORT = /^import\s+(type\s+)?([\s\S]*?)\s+from\s+'([^']+)';/gm;

/** The modules a source file loads at run time: package names, or resolved source paths. */
function runtimeImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const [, typeOnly, clause = '', spec = ''] = m;
    if (typeOnly) continue;
    // `import { type A, type B } from …` is erased too.
    const names = clause.replace(/^\{|\}$/g, '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (clause.startsWith('{') && names.every((n) => n.startsWith('type '))) continue;
    found.push(spec.startsWith('.') ? sourceFile(path.resolve(path.dirname(file), spec)) : spec);
  }
  for (const m of text.matchAll(/^export \* from '([^']+)';/gm)) found.push(sourceFile(path.resolve(path.dirname(file), m[1] ?? '')));
  return found;
}

/** `x.ts`, else `x/index.ts` (as the compiled require resolves it). */
function sourceFile(base: string): string {
  return fs.existsSync(`${base}.ts`) ? `${base}.ts` : path.join(base, 'index.ts');
}

function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    if (file.endsWith('.ts')) for (const next of runtimeImports(file)) todo.push(next);
  }
  return seen;
}

describe('the assembly thread’s modules', () => {
  const loaded = reachable(path.join(SRC, 'assembly/assembly-worker.ts'));

  it('walks the real graph (normalize, dedupe, composition and the FHIR face of the case Patient)', () => {
    for (const m of ['normalize/normalize.ts', 'normalize/dedupe/index.ts', 'normalize/composition.ts', 'cases/fhir-face.ts', 'normalize/terminology-apply.ts']) {
      expect(loaded).toContain(path.join(SRC, m));
    }
  });

  it('leaves out zod and the rule loaders that use it', () => {
    expect([...loaded].filter((m) => m === 'zod' || m.startsWith('zod/'))).toEqual([]);
    expect(loaded).not.toContain(path.join(SRC, 'normalize/terminology.ts'));
    expect(loaded).not.toContain(path.join(SRC, 'cases/eligibility-rules.ts'));
  });
});
