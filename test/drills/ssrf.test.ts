import { ssrfDrill } from '../../drills/ssrf';
import { failuresOf } from '../../drills/support/drill-log';

/** The full SSRF probe list (it is quick): every probe refused, nothing reaches the attacker server. */
it('refuses every SSRF probe and never contacts the attacker server', async () => {
  const lines: string[] = [];
  const result = await ssrfDrill({ print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 60_000);
