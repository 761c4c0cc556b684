import { forEachLimited } from '../../src/util/for-each-limited';

it('works on every item, never more than the limit at once', async () => {
  let running = 0;
  let most = 0;
  const done: number[] = [];
  await forEachLimited(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
    running += 1;
    most = Math.max(most, running);
    await new Promise((resolve) => setImmediate(resolve));
    done.push(i);
    running -= 1;
  });
  expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  expect(most).toBe(4);
});

it('rejects with the first failure once the items already started have settled, and starts no more', async () => {
  const started: number[] = [];
  let running = 0;
  const failing = forEachLimited([0, 1, 2, 3, 4, 5], 2, async (i) => {
    started.push(i);
    running += 1;
    await new Promise((resolve) => setImmediate(resolve));
    running -= 1;
    if (i === 1) throw new Error('item 1 failed');
  });
  await expect(failing).rejects.toThrow('item 1 failed');
  expect(running).toBe(0);
  expect(started).toEqual([0, 1, 2]);
});

it('names the lane running each item: below the limit, never two items of one lane at once', async () => {
  const busy = new Set<number>();
  const lanes = new Set<number>();
  await forEachLimited(Array.from({ length: 30 }, (_, i) => i), 3, async (_, lane) => {
    expect(busy.has(lane)).toBe(false);
    busy.add(lane);
    lanes.add(lane);
    await new Promise((resolve) => setImmediate(resolve));
    busy.delete(lane);
  });
  expect([...lanes].sort()).toEqual([0, 1, 2]);
});
