import { killWorkerDrill } from '../../drills/kill-worker';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

const WITHIN_MS = 90_000;

/**
 * Quick variant of the kill -9 drill (`npm run drills` runs 20 kill points): a worker process is
 * SIGKILLed at 3 seeded points of a pull and restarted; the raw store and the bundle equal an
 * undisturbed run.
 */
it('a pull survives 3 SIGKILLed workers with exactly the undisturbed raw store and bundle', async () => {
  await expectDrillPasses((print) => killWorkerDrill({ killPoints: 3, seed: 8, print }), WITHIN_MS);
}, WITHIN_MS + REPORT_MARGIN_MS);
