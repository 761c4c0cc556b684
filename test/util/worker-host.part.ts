/**
 * The worker-thread lifecycle both the assembly and the PDF thread use (`src/util/worker-host.ts`),
 * with a small stand-in worker (plain JS, no transpiling): the parts their own tests do not reach —
 * a request's error rebuilt with its stack, an answer of the wrong type, a request that cannot be
 * sent, a request to a thread that stopped, a worker that speaks before it is ready.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker, WorkerHost, type FailedReply } from '../../src/util/worker-host';

type Request = { readonly type: 'ask'; readonly id: number; readonly payload: unknown };
type Reply =
  | { readonly type: 'ready' }
  | { readonly type: 'echo'; readonly id: number; readonly payload: unknown }
  | { readonly type: 'other'; readonly id: number }
  | FailedReply;

class EchoThreadError extends Error {
  override readonly name = 'EchoThreadError';
}

/** Echoes each payload; `throw` fails the request with a RangeError, `wrong` answers `other`. */
const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.payload === 'throw') {
    const e = new RangeError('no such payload');
    parentPort.postMessage({ type: 'failed', id: m.id, error: { name: e.name, message: e.message, stack: e.stack } });
  } else if (m.payload === 'wrong') parentPort.postMessage({ type: 'other', id: m.id });
  else if (m.payload === 'exit') process.exit(5);
  else parentPort.postMessage({ type: 'echo', id: m.id, payload: m.payload });
});
parentPort.postMessage({ type: 'ready' });
`;

class EchoThread extends WorkerHost<Request, Reply> {
  constructor(private readonly code: string) {
    super({ name: 'echo thread', idleMs: 1000, startupTimeoutMs: 10_000 });
  }

  async ask(payload: unknown): Promise<unknown> {
    return this.exclusive(async (worker, id) => (await this.request(worker, { type: 'ask', id, payload }, 'echo')).payload);
  }

  /** Asks `first`, then (whatever became of it) `second`, in one job: the second finds the thread as the first left it. */
  async askTwice(first: unknown, second: unknown): Promise<unknown> {
    return this.exclusive(async (worker, id) => {
      await this.request(worker, { type: 'ask', id, payload: first }, 'echo').catch(() => undefined);
      return (await this.request(worker, { type: 'ask', id, payload: second }, 'echo')).payload;
    });
  }

  protected override spawn(): Worker {
    return startWorker({ eval: this.code });
  }

  protected override threadError(message: string): Error {
    return new EchoThreadError(message);
  }
}

describe('a worker host', () => {
  const thread = new EchoThread(ECHO);
  afterAll(async () => {
    await thread.close();
  });

  it('answers each request in the order asked, from one thread', async () => {
    const order: number[] = [];
    const answers = await Promise.all([1, 2, 3].map((n) => thread.ask(n).then((a) => (order.push(n), a))));
    expect(answers).toEqual([1, 2, 3]);
    expect(order).toEqual([1, 2, 3]);
    expect(thread.started).toBe(1);
  });

  it('rejects with the error the worker threw: its name, message and stack', async () => {
    const err = (await thread.ask('throw').catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('RangeError');
    expect(err.message).toBe('no such payload');
    expect(err.stack).toMatch(/^RangeError: no such payload\n/);
    expect(await thread.ask('after')).toBe('after');
  });

  it('refuses an answer of another type than the request waits for', async () => {
    await expect(thread.ask('wrong')).rejects.toThrow(new EchoThreadError('the echo thread answered other to a request for echo'));
  });

  it('rejects a request that cannot be sent (not cloneable), and the next goes on', async () => {
    await expect(thread.ask(() => undefined)).rejects.toThrow(/could not be cloned/);
    expect(await thread.ask('next')).toBe('next');
    expect(thread.started).toBe(1);
  });

  it('rejects a request to a thread that has stopped with the reason it stopped, and starts a new one for the next job', async () => {
    await expect(thread.askTwice('exit', 'again')).rejects.toThrow(new EchoThreadError('the echo thread exited (code 5)'));
    expect(await thread.ask('next')).toBe('next');
  });

  it('fails the start of a worker that speaks before it says ready', async () => {
    const early = new EchoThread(`require('node:worker_threads').parentPort.postMessage({ type: 'echo', id: 0 }); setInterval(() => undefined, 1000);`);
    try {
      await expect(early.ask(1)).rejects.toThrow(new EchoThreadError('the echo thread answered echo before it was ready'));
    } finally {
      await early.close();
    }
  });
});
