import { assembleCase } from '../../src/assembly/assemble';
import { AssemblyTooLargeError } from '../../src/assembly/assembly-memory';
import { AssemblyThread } from '../../src/assembly/assembly-thread';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { seedCase, type SeededCase } from '../../bench/assemble-seed';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { eventually } from '../support/service';
import { longestGapDuring } from '../support/event-loop';

/**
 * The CPU of an assembly runs in the assembly thread: the event loop of the process stays free while
 * a large case is built, a case that runs the thread out of its heap fails alone (the process and the
 * next assembly go on), and the thread ends when idle.
 */
let t: TestDatabase;
let large: SeededCase;
let small: SeededCase;
/** Too large for a 64 MB heap whatever the thread holds besides (24k raw resources). */
let tooLarge: SeededCase;
const mappings = (): ReturnType<typeof loadTerminologyMappings> => loadTerminologyMappings();

beforeAll(async () => {
  t = await createTestDatabase();
  large = await seedCase(t.db, 6_000);
  small = await seedCase(t.db, 200);
  tooLarge = await seedCase(t.db, 12_000);
}, 120_000);

afterAll(async () => {
  await t.drop();
});

it('keeps the event loop free while a large case is built in the thread', async () => {
  const thread = new AssemblyThread();
  try {
    // Once to start the thread and warm it up (its start-up is not the point here).
    await assembleCase({ db: t.db, mappings, assemblyThread: thread }, small.caseId, { trigger: 'warm-up' });
    const { result, longestGapMs, longestHeldCpuMs } = await longestGapDuring(() => assembleCase({ db: t.db, mappings, assemblyThread: thread }, large.caseId, { trigger: 'test' }));
    expect(result.entries).toBeGreaterThan(10_000);
    const inThread = (result.timings['normalize'] ?? 0) + (result.timings['dedupe'] ?? 0) + (result.timings['compose'] ?? 0);
    // Built on this thread, the loop would have stood still for all of normalize, dedupe and compose.
    // Judged by the main thread's own CPU time between timer ticks: on a loaded machine (CI runs
    // three test files on two cores) a wall-clock gap also counts the time spent waiting for a core.
    process.stdout.write(`assembly thread: in-thread ${inThread.toFixed(0)} ms, loop held up to ${longestHeldCpuMs} ms of CPU (${longestGapMs.toFixed(0)} ms wall)\n`);
    expect(inThread).toBeGreaterThan(200);
    expect(longestHeldCpuMs).toBeLessThan(inThread / 4);
    expect(thread.started).toBe(1);
  } finally {
    await thread.close();
  }
}, 120_000);

it('fails alone a case that runs the thread out of its heap: the next assembly starts a fresh thread', async () => {
  const thread = new AssemblyThread({ heapBytes: () => 64 * 1024 * 1024 });
  try {
    const err = await assembleCase({ db: t.db, mappings, assemblyThread: thread }, tooLarge.caseId, { trigger: 'too-large' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AssemblyTooLargeError);
    expect((err as AssemblyTooLargeError).resources).toBe(tooLarge.resources);
    const next = await assembleCase({ db: t.db, mappings, assemblyThread: thread }, small.caseId, { trigger: 'after' });
    expect(next.entries).toBeGreaterThan(100);
    expect(thread.started).toBe(2);
  } finally {
    await thread.close();
  }
}, 120_000);

it('ends when idle, and starts again for the next assembly', async () => {
  const thread = new AssemblyThread({ idleMs: 50 });
  try {
    await assembleCase({ db: t.db, mappings, assemblyThread: thread }, small.caseId, { trigger: 'first' });
    await eventually(async () => thread.running, (running) => !running, 10_000);
    await assembleCase({ db: t.db, mappings, assemblyThread: thread }, small.caseId, { trigger: 'second' });
    expect(thread.started).toBe(2);
  } finally {
    await thread.close();
  }
}, 120_000);

describe('reading the raw store no further than two batches ahead of the thread', () => {
  /** A worker that starts, then takes raw batches without ever counting them parsed; `onRaw` runs at each (`n` from 1). */
  const stubWorker = (onRaw: string): { eval: string } => ({
    eval: `const { parentPort } = require('node:worker_threads');
      let n = 0;
      parentPort.on('message', (m) => { if (m.type === 'raw') { n += 1; ${onRaw} } });
      parentPort.postMessage({ type: 'ready' });`,
  });
  const batch = [{ sourceId: 's', resourceType: 'Basic', remoteId: 'b', versionId: '1', fetchedAt: '2026-12-01T00:00:00.000Z', sha256: 'x', resourceJson: '{}' }];

  it('waits for the thread before a third batch, and fails at once when the thread is closed meanwhile', async () => {
    const thread = new AssemblyThread({ source: stubWorker('') });
    let third: Promise<void> | undefined;
    const built = thread.build(async (sendRaw) => {
      await sendRaw(batch);
      await sendRaw(batch);
      third = sendRaw(batch);
      const settled = await Promise.race([third.then(() => 'resolved', () => 'rejected'), new Promise((r) => setImmediate(() => r('waiting')))]);
      expect(settled).toBe('waiting');
      void thread.close();
      await third;
      throw new Error('not reached: the read should have failed');
    }, async () => 'used');
    await expect(built).rejects.toThrow('the assembly thread was closed');
    await expect(third).rejects.toThrow('the assembly thread was closed');
  });

  it('fails the read with the reason the thread stopped (here its exit code), not a hang', async () => {
    const thread = new AssemblyThread({ source: stubWorker('if (n === 3) process.exit(7);') });
    try {
      const built = thread.build(async (sendRaw) => {
        for (;;) await sendRaw(batch);
      }, async () => 'used');
      await expect(built).rejects.toThrow('the assembly thread exited (code 7)');
    } finally {
      await thread.close();
    }
  });
});
