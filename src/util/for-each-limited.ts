/**
 * Runs `work` on every item with at most `limit` running at once (so thousands of items do not open
 * thousands of files together). Resolves when all are done; rejects with the first failure, after the
 * ones already started have settled (none is left running behind the caller's back).
 * @param items - What to work on.
 * @param limit - How many may run at once (at least 1).
 * @param work - The work for one item (what it resolves to is not kept), with the number of the lane
 *   running it: `0` to `limit - 1`, never two items of one lane at once (for a resource per lane).
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T, lane: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (laneNo: number): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await work(item, laneNo);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, (_, laneNo) => lane(laneNo));
  const settled = await Promise.allSettled(lanes);
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
}
