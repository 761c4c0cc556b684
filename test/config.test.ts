import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, developmentSecretPath, loadConfig, MAX_HTTP_REQUEST_TIMEOUT_MS } from '../src/config';

const base = { AUTH_JWT_SECRET: 'x'.repeat(40) };

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      role: 'all',
      port: 8080,
      redisUrl: 'redis://127.0.0.1:6379',
      dataDir: path.resolve('./data'),
      databaseUrl: undefined,
      logLevel: 'info',
      assemblyThreadIdleMs: 1000,
    });
    expect(loadConfig({ ...base, ASSEMBLY_THREAD_IDLE_MS: '0' }).assemblyThreadIdleMs).toBe(0);
    expect(problemsOf({ ...base, ASSEMBLY_THREAD_IDLE_MS: '-5' }).map((p) => p.split(':')[0])).toEqual(['ASSEMBLY_THREAD_IDLE_MS']);
  });

  it('gives a request long enough to arrive whole for the largest upload file over a slow uplink, and takes HTTP_REQUEST_TIMEOUT_MS within bounds', () => {
    const hours = (ms: number): number => Math.round((ms / 3_600_000) * 10) / 10;
    // 1 GiB at 1 Mbit/s: 2.4 h (the service used to cut every request at 1 h).
    expect(hours(loadConfig(base).httpRequestTimeoutMs)).toBe(2.4);
    expect(hours(loadConfig({ ...base, MAX_UPLOAD_FILE_BYTES: String(4 * 1024 ** 3) }).httpRequestTimeoutMs)).toBe(9.5);
    expect(loadConfig({ ...base, MAX_UPLOAD_FILE_BYTES: String(1024 ** 2) }).httpRequestTimeoutMs).toBe(3_600_000);
    expect(loadConfig({ ...base, MAX_UPLOAD_FILE_BYTES: String(64 * 1024 ** 3) }).httpRequestTimeoutMs).toBe(MAX_HTTP_REQUEST_TIMEOUT_MS);
    expect(loadConfig({ ...base, HTTP_REQUEST_TIMEOUT_MS: '7200000' }).httpRequestTimeoutMs).toBe(7_200_000);
    for (const value of ['59999', String(MAX_HTTP_REQUEST_TIMEOUT_MS + 1), 'soon']) {
      expect(problemsOf({ ...base, HTTP_REQUEST_TIMEOUT_MS: value }).map((p) => p.split(':')[0])).toEqual(['HTTP_REQUEST_TIMEOUT_MS']);
    }
  });

  it('lets a delivery wait hours for a paused recipient by default, longer than a pull, within bounds', () => {
    expect(loadConfig(base).opinion.deliveryMaxPauseWaitMs).toBe(4 * 3_600_000);
    expect(loadConfig(base).pullMaxPauseWaitMs).toBe(900_000);
    expect(loadConfig({ ...base, DELIVERY_MAX_PAUSE_WAIT_MS: '0' }).opinion.deliveryMaxPauseWaitMs).toBe(0);
    for (const value of ['-1', String(7 * 86_400_000 + 1), 'later']) {
      expect(problemsOf({ ...base, DELIVERY_MAX_PAUSE_WAIT_MS: value }).map((p) => p.split(':')[0])).toEqual(['DELIVERY_MAX_PAUSE_WAIT_MS']);
    }
  });

  it('names each bad variable, and never echoes the values', () => {
    const problems = problemsOf({ ...base, PORT: 'eighty', REDIS_URL: 'http://nope', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(problems.map((p) => p.split(':')[0])).toEqual(expect.arrayContaining(['PORT', 'REDIS_URL', 'LOG_LEVEL', 'DATABASE_URL']));
    expect(problems.join(' ')).not.toContain('eighty');
  });

  it('says DATABASE_URL must be a PostgreSQL URL', () => {
    for (const url of ['mysql://x', 'not a url']) {
      const problem = problemsOf({ ...base, DATABASE_URL: url }).find((p) => p.startsWith('DATABASE_URL'));
      expect(problem).toBe('DATABASE_URL: must be a PostgreSQL URL, postgres://user:password@host:5432/database (or postgresql://…)');
    }
    expect(loadConfig({ ...base, DATABASE_URL: 'postgresql://u@h/db' }).databaseUrl).toBe('postgresql://u@h/db');
  });

  it('takes SHUTDOWN_TIMEOUT_MS, 90 s by default (below the worker stop_grace_period of docker-compose)', () => {
    expect(loadConfig(base).shutdownTimeoutMs).toBe(90_000);
    expect(loadConfig({ ...base, SHUTDOWN_TIMEOUT_MS: '30000' }).shutdownTimeoutMs).toBe(30_000);
    expect(problemsOf({ ...base, SHUTDOWN_TIMEOUT_MS: '10' })[0]).toMatch(/^SHUTDOWN_TIMEOUT_MS: /);
  });

  it('refuses api or worker roles on embedded PGlite, saying why', () => {
    const [problem] = problemsOf({ ...base, ROLE: 'worker' });
    expect(problem).toMatch(/^ROLE: .*DATABASE_URL.*PGlite.*only one process/);
    expect(loadConfig({ ...base, ROLE: 'worker', DATABASE_URL: 'postgres://u@h/db' }).role).toBe('worker');
  });

  it('treats an empty DATABASE_URL as unset', () => {
    expect(loadConfig({ ...base, DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it('needs real auth in production, and makes a stable development secret otherwise', () => {
    expect(problemsOf({ NODE_ENV: 'production' }).join()).toMatch(/AUTH_JWT_SECRET or AUTH_JWKS_URL/);
    // A JWKS in production: the audience and issuer are checked (tokens the IdP issued to other apps refused), over https.
    const jwks = { NODE_ENV: 'production', SECRETS_KEY: Buffer.alloc(32, 3).toString('base64'), DATABASE_URL: 'postgres://u@h/db' };
    expect(problemsOf({ ...jwks, AUTH_JWKS_URL: 'http://idp.example.org/jwks' }).map((p) => p.split(':')[0]).sort()).toEqual(['AUTH_AUDIENCE', 'AUTH_ISSUER', 'AUTH_JWKS_URL']);
    expect(loadConfig({ ...jwks, AUTH_JWKS_URL: 'https://idp.example.org/jwks', AUTH_AUDIENCE: 'sob', AUTH_ISSUER: 'https://idp.example.org' }).auth).toMatchObject({ audience: 'sob', issuer: 'https://idp.example.org' });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sob-config-'));
    try {
      const first = loadConfig({ DATA_DIR: dataDir });
      const second = loadConfig({ DATA_DIR: dataDir });
      expect(first.auth.usingDevelopmentSecret).toBe(true);
      expect(first.auth.jwtSecret).toHaveLength(43);
      expect(second.auth.jwtSecret).toBe(first.auth.jwtSecret);
      expect(fs.statSync(developmentSecretPath(dataDir)).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses embedded PGlite in production, naming DATABASE_URL and saying PGlite is for trying the service only', () => {
    const production = { ...base, NODE_ENV: 'production', SECRETS_KEY: Buffer.alloc(32, 3).toString('base64') };
    for (const env of [production, { ...production, DATABASE_URL: '' }, { ...production, DATABASE_URL: '  ' }, { ...production, ROLE: 'api' }]) {
      const problems = problemsOf(env);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^DATABASE_URL: must be set in production .*PGlite.*never fsyncs.*for trying the service, not for production/);
    }
    expect(loadConfig({ ...production, DATABASE_URL: 'postgres://u@h/db' })).toMatchObject({ production: true, databaseUrl: 'postgres://u@h/db' });
    // Outside production PGlite stays the zero-set-up default.
    expect(loadConfig(base)).toMatchObject({ production: false, databaseUrl: undefined });
    expect(loadConfig({ ...base, NODE_ENV: 'test' })).toMatchObject({ production: false, databaseUrl: undefined });
  });

  it('keeps finished outbox rows 30 days unless NOTIFY_OUTBOX_RETENTION_DAYS says otherwise, and names a bad value', () => {
    expect(loadConfig(base).opinion.notifyOutboxRetentionDays).toBe(30);
    expect(loadConfig({ ...base, NOTIFY_OUTBOX_RETENTION_DAYS: '7' }).opinion.notifyOutboxRetentionDays).toBe(7);
    for (const bad of ['0', '-3', '1.5', 'thirty', '3651', '']) {
      const problems = problemsOf({ ...base, NOTIFY_OUTBOX_RETENTION_DAYS: bad });
      expect(problems).toEqual(['NOTIFY_OUTBOX_RETENTION_DAYS: must be a whole number of days from 1 to 3650']);
    }
    expect(() => loadConfig({ ...base, NOTIFY_OUTBOX_RETENTION_DAYS: 'thirty' })).toThrow(/NOTIFY_OUTBOX_RETENTION_DAYS/);
  });

  it('keeps orphan blob files 24 hours unless BLOB_ORPHAN_GRACE_HOURS says otherwise, and names a bad value', () => {
    expect(loadConfig(base).blobOrphanGraceHours).toBe(24);
    expect(loadConfig({ ...base, BLOB_ORPHAN_GRACE_HOURS: '72' }).blobOrphanGraceHours).toBe(72);
    for (const bad of ['0', '-1', '1.5', 'a day', '8761', '']) {
      expect(problemsOf({ ...base, BLOB_ORPHAN_GRACE_HOURS: bad })).toEqual(['BLOB_ORPHAN_GRACE_HOURS: must be a whole number of hours from 1 to 8760']);
    }
  });

  it('rejects a short HS256 secret and an unknown time zone', () => {
    expect(problemsOf({ AUTH_JWT_SECRET: 'short' })[0]).toMatch(/^AUTH_JWT_SECRET: must be at least 32/);
    expect(problemsOf({ ...base, PROGRAM_TIME_ZONE: 'Mars/Olympus' })[0]).toMatch(/^PROGRAM_TIME_ZONE/);
  });
});

describe('webhook retries', () => {
  /** How long BullMQ's exponential backoff keeps retrying: the delays between `attempts` tries, the first `backoffMs`, doubling. */
  const retryWindowMs = (attempts: number, backoffMs: number): number => backoffMs * (2 ** (attempts - 1) - 1);

  it('keep trying a subscriber for most of a day by default, first within seconds (a receiver down for a restart or a maintenance window loses no event)', () => {
    const { webhookAttempts, webhookBackoffMs } = loadConfig(base).opinion;
    expect(webhookBackoffMs).toBeLessThanOrEqual(10_000);
    // Standard Webhooks' schedule spans ~27 h (5 s … 10 h); a minute (6 tries from 2 s) lost every event of a longer outage.
    expect(retryWindowMs(webhookAttempts, webhookBackoffMs)).toBeGreaterThanOrEqual(12 * 3600_000);
    expect(retryWindowMs(webhookAttempts, webhookBackoffMs)).toBeLessThanOrEqual(48 * 3600_000);
  });
});
