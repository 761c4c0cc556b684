import fs from 'node:fs';
import path from 'node:path';
import { STALE_CACHE_FILE_MS, writeCacheFile } from '../../src/sandbox/machine-cache';
import { tempDir } from '../support/temp-dir';

function writtenAgo(file: string, ms: number): void {
  fs.writeFileSync(file, 'old');
  const at = new Date(Date.now() - ms);
  fs.utimesSync(file, at, at);
}

describe('machine cache files', () => {
  it('are written whole, and files of the same kind not written for a day are removed beside them', () => {
    const dir = tempDir('machine-cache');
    const stale = path.join(dir, 'profiles-types-1-1-v1.json');
    const recent = path.join(dir, 'profiles-types-2-2-v1.json');
    const otherKind = path.join(dir, 'indexed-1-v1.bin');
    writtenAgo(stale, STALE_CACHE_FILE_MS + 60_000);
    writtenAgo(recent, STALE_CACHE_FILE_MS - 60_000);
    writtenAgo(otherKind, 10 * STALE_CACHE_FILE_MS);

    const file = path.join(dir, 'profiles-types-3-3-v1.json');
    writeCacheFile(file, '{"entry":[]}', 'profiles-types-');

    expect(fs.readFileSync(file, 'utf8')).toBe('{"entry":[]}');
    expect(fs.readdirSync(dir).sort()).toEqual(['indexed-1-v1.bin', 'profiles-types-2-2-v1.json', 'profiles-types-3-3-v1.json']);
  });

  it('cost nothing but the work when the folder cannot be written', () => {
    const dir = tempDir('machine-cache');
    const blocker = path.join(dir, 'not-a-folder');
    fs.writeFileSync(blocker, '');
    expect(() => writeCacheFile(path.join(blocker, 'indexed-1.bin'), 'x', 'indexed-')).not.toThrow();
    expect(fs.readdirSync(dir)).toEqual(['not-a-folder']);
  });
});
