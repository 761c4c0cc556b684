import { PendingSteps } from '../../src/util/pending-steps';

/** A promise with its resolve, so a step can be held open while the list is read. */
function gate(): { readonly promise: Promise<void>; readonly open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('PendingSteps', () => {
  it('lists a step from its start until it settles, failed or not', async () => {
    const steps = new PendingSteps();
    const held = gate();
    const running = steps.run('fhir-clients', () => held.promise);
    expect(steps.names()).toEqual(['fhir-clients']);
    held.open();
    await running;
    expect(steps.names()).toEqual([]);
    await expect(steps.run('redis', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(steps.names()).toEqual([]);
  });

  it('names a step with parts under way by those parts only', async () => {
    const steps = new PendingSteps();
    const worker = gate();
    const queue = gate();
    const workers = steps.run('workers', async () => {
      const inner = steps.within('workers/');
      await Promise.all([inner.run('worker:notify', () => worker.promise), inner.run('queue:notify', () => queue.promise)]);
    });
    const other = gate();
    const metrics = steps.run('metrics-server', () => other.promise);
    expect(steps.names()).toEqual(['workers/worker:notify', 'workers/queue:notify', 'metrics-server']);
    worker.open();
    queue.open();
    await workers;
    expect(steps.names()).toEqual(['metrics-server']);
    other.open();
    await metrics;
  });
});
