import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';

const run = promisify(execFile);
const PG_BIN = process.env.DRILL_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A throwaway PostgreSQL cluster of the drill's own (never the machine's shared one): `initdb` in a
 * temp dir (trust auth), `pg_ctl` on a free port. As root, the binaries run as the `postgres` user,
 * since PostgreSQL refuses to run as root.
 */
export interface OwnPostgres {
  /** Admin URL (`postgres` user, `postgres` database). */
  readonly adminUrl: string;
  /** `pg_ctl restart -m fast`: every connection is cut, the server is back when this resolves. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function pg(binary: string, args: string[]): Promise<void> {
  const file = path.join(PG_BIN, binary);
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', file, ...args]);
  else await run(file, args);
}

/** Creates and starts the drill's own PostgreSQL cluster. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-drill-pg-'));
  if (process.getuid?.() === 0) await run('chown', ['postgres', dir]);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  await pg('pg_ctl', ['-D', data, '-o', serverOptions, '-l', log, '-w', 'start']);
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: () => pg('pg_ctl', ['-D', data, '-o', serverOptions, '-l', log, '-m', 'fast', '-w', 'restart']),
    async stop() {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
