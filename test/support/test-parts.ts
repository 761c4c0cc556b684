/**
 * Test parts and the suites that run them. Most test files are parts (`*.part.ts`, one idea each, as
 * before), run a few to a Jest test file: each folder's `suite-<k>-of-<n>.test.ts` files ({@link runParts})
 * share its parts out between them, every part inside a `describe` named after its file.
 *
 * Why: Jest gives each test file a fresh module registry, so each one loaded and compiled the
 * service's ~1,300 modules again (0.6–0.7 s of CPU) before its first test, and set its environment
 * up. Seven `test/http` files run one by one in one process took 15.3 s of CPU; the same seven as the
 * parts of one file 8.1 s (2026-12-02, `jest --runInBand`, twice each): ~1 s less a file, on a
 * suite whose ~330 files were bound by the machine's two cores.
 *
 * What a part may rely on is what it could before, but for that registry: a part's module state
 * (singletons, caches) is its suite's. Its spies are restored when it ends (here), so none leaks into
 * the next part; a part that must have modules of its own uses `jest.isolateModules`. The files whose
 * timing or memory is the point (the drills, the demo, the large and timed ones of `test/assembly`)
 * stay test files of their own. One part alone: `npm run test:part -- <path>` (`jest.parts.config.js`).
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';

/** `suite-<k>-of-<n>.test.ts`: the k-th of a folder's n suites. */
const SUITE_FILE = /^suite-(\d+)-of-(\d+)\.test\.ts$/;

/** The parts of `dir`, in the order the suites take them. */
function partsIn(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.part.ts'))
    .sort();
}

/**
 * Checks that `dir`, holding parts, has the suite files `suite-1-of-n.test.ts` … `suite-n-of-n.test.ts`,
 * none missing, one n; the error names what is wrong (a part no suite would run is a test silently lost).
 */
function checkSuiteFiles(dir: string): void {
  const suites = fs.readdirSync(dir).filter((f) => SUITE_FILE.test(f)).sort();
  const n = Number(SUITE_FILE.exec(suites[0] ?? '')?.[2] ?? 0);
  const expected = Array.from({ length: n }, (_, i) => `suite-${i + 1}-of-${n}.test.ts`).sort();
  if (n === 0 || suites.join() !== expected.join()) {
    throw new Error(`${dir}: its ${partsIn(dir).length} test parts need suite files suite-1-of-n.test.ts … suite-n-of-n.test.ts (one n); found ${suites.join(', ') || 'none'}`);
  }
}

/** Every folder under `root` holding parts, checked by {@link checkSuiteFiles} (Jest's global setup, before any suite runs). */
export function checkEveryPartRuns(root: string): void {
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(root, entry.name);
    if (partsIn(dir).length > 0) checkSuiteFiles(dir);
    checkEveryPartRuns(dir);
  }
}

/**
 * Registers the parts of the suite file `suiteFile` (call it with `__filename`): of its folder's parts
 * in name order, the k-th suite of n takes every n-th from the k-th (that the folder's suites are all
 * there, with one n, Jest's global setup has checked: {@link checkEveryPartRuns}). Each part runs
 * inside a `describe` named after its file, its hooks scoped to it, its spies restored after its own hooks.
 */
export function runParts(suiteFile: string): void {
  const dir = path.dirname(suiteFile);
  const match = SUITE_FILE.exec(path.basename(suiteFile));
  if (!match) throw new Error(`${suiteFile} is not named suite-<k>-of-<n>.test.ts`);
  const k = Number(match[1]);
  const n = Number(match[2]);
  partsIn(dir).forEach((part, i) => {
    if (i % n !== k - 1) return;
    describe(part, () => {
      require(path.join(dir, part));
      afterAll(() => {
        jest.restoreAllMocks();
      });
    });
  });
}
