import { restartPostgresDrill } from '../../drills/restart-postgres';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

const WITHIN_MS = 90_000;

/** Quick variant of the PostgreSQL restart drill: its own throwaway cluster, `pg_ctl restart -m fast` mid-pull. */
it('a pull completes through a PostgreSQL restart; the worker survives it', async () => {
  await expectDrillPasses((print) => restartPostgresDrill({ print }), WITHIN_MS);
}, WITHIN_MS + REPORT_MARGIN_MS);
