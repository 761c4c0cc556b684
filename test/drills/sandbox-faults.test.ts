import { sandboxFaultsDrill } from '../../drills/sandbox-faults';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

const WITHIN_MS = 90_000;

/** Quick variant of the sandbox faults drill: every fault kind at 3% on every route of two SMART servers, one seed. */
it('a pull under seeded faults completes or ends partial naming the source, and stores nothing corrupt', async () => {
  await expectDrillPasses((print) => sandboxFaultsDrill({ rate: 0.03, seed: 8, print }), WITHIN_MS);
}, WITHIN_MS + REPORT_MARGIN_MS);
