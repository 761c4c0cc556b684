import { restartPostgresDrill } from '../../drills/restart-postgres';
import { failuresOf } from '../../drills/support/drill-log';

/** Quick variant of the PostgreSQL restart drill: its own throwaway cluster, `pg_ctl restart -m fast` mid-pull. */
it('a pull completes through a PostgreSQL restart; the worker survives it', async () => {
  const lines: string[] = [];
  const result = await restartPostgresDrill({ print: (line) => lines.push(line) });
  expect({ failures: failuresOf(result), log: result.ok ? [] : lines }).toEqual({ failures: [], log: [] });
}, 90_000);
