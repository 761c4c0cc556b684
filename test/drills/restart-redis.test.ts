import { restartRedisDrill } from '../../drills/restart-redis';
import { failuresOf } from '../../drills/support/drill-log';

/** Quick variant of the Redis restart drill (the same as `npm run drills` runs): its own redis-server, killed mid-pull. */
it('a pull completes through a Redis restart (AOF on)', async () => {
  const lines: string[] = [];
  const result = await restartRedisDrill({ downMs: 1000, print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 90_000);

/** Redis comes back empty (no persistence): the reconciler puts the pull's flow, its pending documents and its own schedule back. */
it('a pull completes, documents and bundle included, when Redis comes back empty', async () => {
  const lines: string[] = [];
  const result = await restartRedisDrill({ downMs: 500, lose: true, print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 120_000);
