import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Admin URL of the shared PostgreSQL the drills create their databases on (never restarted by a drill). */
export const SHARED_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The shared Redis (never restarted by a drill; each drill uses its own queue prefix). */
export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A database created for one drill run. */
export interface DrillDatabase {
  readonly url: string;
  /** Drops the database (forcing off any connection left). */
  drop(): Promise<void>;
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** Creates an empty database on the server of `adminUrl`; the service migrates it when it starts. */
export async function createDrillDatabase(adminUrl = SHARED_POSTGRES_URL): Promise<DrillDatabase> {
  const name = `sob_drill_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
