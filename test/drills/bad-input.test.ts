import { badInputDrill } from '../../drills/bad-input';
import { expectDrillPasses, REPORT_MARGIN_MS } from './quick-drill';

/**
 * Quick variant of the bad-input drill: 20 seeded fast-check bodies for every POST/PUT/PATCH route of
 * the route table (`npm run drills` sends 1000 per route), and the fixed bad values for every query
 * parameter of the GET routes: no 5xx, every 4xx names the problem.
 */
it('answers generated bad bodies on every body route without a 5xx, naming each problem', async () => {
  await expectDrillPasses((print) => badInputDrill({ bodiesPerRoute: 20, seed: 8, parallel: 4, print }), 90_000, (line) => !line.includes(' ok  '));
}, 90_000 + REPORT_MARGIN_MS);
