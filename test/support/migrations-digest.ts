import { createHash } from 'node:crypto';
import type { Migration } from '../../src/db/migrations';

/**
 * A hash of a list of migrations (each one's number, name and SQL, after `seed`): names the migrated
 * templates of tests (`postgres-template.ts`, `pglite-template.ts`), so a changed or added migration
 * makes a new one. 16 hex digits.
 */
export function migrationsDigest(migrations: readonly Migration[], seed = ''): string {
  const hash = createHash('sha256').update(seed);
  for (const m of migrations) hash.update(`\0${m.version}\0${m.name}\0${m.sql}`);
  return hash.digest('hex').slice(0, 16);
}
