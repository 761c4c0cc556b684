import { badInputDrill } from '../../drills/bad-input';
import { failuresOf } from '../../drills/support/drill-log';

/**
 * Quick variant of the bad-input drill: 20 seeded fast-check bodies for every POST/PUT/PATCH route of
 * the route table (`npm run drills` sends 1000 per route), and the fixed bad values for every query
 * parameter of the GET routes: no 5xx, every 4xx names the problem.
 */
it('answers generated bad bodies on every body route without a 5xx, naming each problem', async () => {
  const lines: string[] = [];
  const result = await badInputDrill({ bodiesPerRoute: 20, seed: 8, parallel: 4, print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines.filter((l) => !l.includes(' ok  ')) }).toEqual({ failures: [], log: [] });
}, 90_000);
