/**
 * Jest's own order, but the long test files first. Without timings from an earlier run (a clean
 * clone, as CI has) Jest starts the largest files first; the drills and the demo are small files
 * that run for half a minute or more each (they start whole services as processes), so they came
 * last and ran on after everything else had finished (2026-11-30: the six drills, ~180 s of work, were
 * the last files of a 895 s run). Started first, they overlap with the rest. The suites of test parts
 * come next (each is several files' work), then the other test files.
 */
const Sequencer = require('@jest/test-sequencer').default;

const LONG = [/[/\\]test[/\\]drills[/\\]/, /[/\\]test[/\\]demo[/\\]/, /assembly-real-patients\.test\.ts$/];
const isLong = (path) => LONG.some((pattern) => pattern.test(path));

/**
 * A suite of test parts (test/support/test-parts.ts, whose SUITE_FILE this repeats: Jest loads this
 * file as plain JavaScript): tens of seconds of work in a file of four lines.
 */
const isSuite = (path) => /[/\\]suite-\d+-of-\d+\.test\.ts$/.test(path);

class LongFirstSequencer extends Sequencer {
  sort(tests) {
    const ordered = super.sort(tests);
    const rank = (t) => (isLong(t.path) ? 0 : isSuite(t.path) ? 1 : 2);
    return [0, 1, 2].flatMap((r) => ordered.filter((t) => rank(t) === r));
  }
}

module.exports = LongFirstSequencer;
