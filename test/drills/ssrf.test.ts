import { ssrfDrill } from '../../drills/ssrf';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

const WITHIN_MS = 60_000;

/** The full SSRF probe list (it is quick): every probe refused, nothing reaches the attacker server. */
it('refuses every SSRF probe and never contacts the attacker server', async () => {
  await expectDrillPasses((print) => ssrfDrill({ print }), WITHIN_MS);
}, WITHIN_MS + REPORT_MARGIN_MS);
