import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TEST_MIGRATION_LISTS } from '../support/migration-lists';
import { ensurePgliteTemplate, pruneStalePgliteTemplates, TEMPLATES } from '../support/pglite-template';

/**
 * The PGlite test templates of other migrations (~40 MB each) are removed once a day old, and build
 * folders a killed run left once an hour old; the current templates stay, whatever their age.
 */
it('removes stale templates and abandoned builds, keeping the current ones and recent others', async () => {
  const current = await ensurePgliteTemplate(TEST_MIGRATION_LISTS[TEST_MIGRATION_LISTS.length - 1] ?? []);
  const tag = randomBytes(4).toString('hex');
  const folder = (name: string, ageMs: number): string => {
    const dir = path.join(TEMPLATES, name);
    fs.mkdirSync(dir, { recursive: true });
    const at = new Date(Date.now() - ageMs);
    fs.utimesSync(dir, at, at);
    return dir;
  };
  const hour = 60 * 60 * 1000;
  const stale = folder(`999-stale${tag}`, 25 * hour);
  const recent = folder(`999-recent${tag}`, 2 * hour);
  const abandoned = folder(`building-test${tag}`, 2 * hour);
  const building = folder(`building-now${tag}`, 0);
  const currentAt = new Date(Date.now() - 30 * 24 * hour);
  fs.utimesSync(current, currentAt, currentAt);
  try {
    const removed = pruneStalePgliteTemplates(TEST_MIGRATION_LISTS);
    expect(removed).toEqual(expect.arrayContaining([path.basename(stale), path.basename(abandoned)]));
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(abandoned)).toBe(false);
    expect(fs.existsSync(recent)).toBe(true);
    expect(fs.existsSync(building)).toBe(true);
    expect(fs.existsSync(current)).toBe(true);
  } finally {
    for (const dir of [stale, recent, abandoned, building]) fs.rmSync(dir, { recursive: true, force: true });
    const now = new Date();
    fs.utimesSync(current, now, now);
  }
});
