import { sandboxFaultsDrill } from '../../drills/sandbox-faults';
import { failuresOf } from '../../drills/support/drill-log';

/** Quick variant of the sandbox faults drill: every fault kind at 3% on every route of two SMART servers, one seed. */
it('a pull under seeded faults completes or ends partial naming the source, and stores nothing corrupt', async () => {
  const lines: string[] = [];
  const result = await sandboxFaultsDrill({ rate: 0.03, seed: 8, print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 90_000);
