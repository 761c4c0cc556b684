import { collectGarbage } from '../../src/util/full-gc';

describe('collectGarbage', () => {
  it('frees what nothing references any more, without --expose-gc on the command line', async () => {
    const ref = new WeakRef(Array.from({ length: 200_000 }, (_, i) => ({ i, text: `resource ${i}` })));
    // A WeakRef's target is kept until the job that made it ends.
    await new Promise<void>((resolve) => setImmediate(resolve));
    collectGarbage();
    expect(ref.deref()).toBeUndefined();
  });

  it('can run again (the gc function is taken once)', () => {
    expect(() => {
      collectGarbage();
      collectGarbage();
    }).not.toThrow();
  });
});
