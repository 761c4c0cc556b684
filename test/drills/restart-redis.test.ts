import { restartRedisDrill } from '../../drills/restart-redis';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

/** Quick variant of the Redis restart drill (the same as `npm run drills` runs): its own redis-server, killed mid-pull. */
it('a pull completes through a Redis restart (AOF on)', async () => {
  await expectDrillPasses((print) => restartRedisDrill({ downMs: 1000, print }), 90_000);
}, 90_000 + REPORT_MARGIN_MS);

/** Redis comes back empty (no persistence): the reconciler puts the pull's flow, its pending documents and its own schedule back. */
it('a pull completes, documents and bundle included, when Redis comes back empty', async () => {
  await expectDrillPasses((print) => restartRedisDrill({ downMs: 500, lose: true, print }), 120_000);
}, 120_000 + REPORT_MARGIN_MS);
