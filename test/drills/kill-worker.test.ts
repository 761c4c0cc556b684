import { killWorkerDrill } from '../../drills/kill-worker';
import { failuresOf } from '../../drills/support/drill-log';

/**
 * Quick variant of the kill -9 drill (`npm run drills` runs 20 kill points): a worker process is
 * SIGKILLed at 3 seeded points of a pull and restarted; the raw store and the bundle equal an
 * undisturbed run.
 */
it('a pull survives 3 SIGKILLed workers with exactly the undisturbed raw store and bundle', async () => {
  const lines: string[] = [];
  const result = await killWorkerDrill({ killPoints: 3, seed: 8, print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 90_000);
