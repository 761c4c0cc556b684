import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { jest } from '@jest/globals';
import { createApp } from '../../src/http/app';
import type { Database } from '../../src/db/database';
import { logger } from '../../src/log';

/**
 * /readyz and /metrics are public (no token): a failing dependency is named, never described —
 * driver errors carry internal addresses and user names — and /metrics keeps serving the process
 * and HTTP metrics when the database does not answer.
 */
const DB_ERROR = 'connect ECONNREFUSED 10.0.3.7:5432';
const AUTH_ERROR = 'password authentication failed for user "sob"';

/** A database whose every query fails like an unreachable PostgreSQL. */
const downDb = {
  query: () => Promise.reject(Object.assign(new Error(DB_ERROR), { code: 'ECONNREFUSED' })),
} as unknown as Database;

let server: http.Server;
let base: string;

beforeAll(async () => {
  const app = createApp({
    db: downDb,
    verifyToken: () => Promise.reject(new Error('no tokens here')),
    routes: [],
    readiness: [
      { name: 'database', check: () => Promise.reject(new Error(AUTH_ERROR)) },
      { name: 'redis', check: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.3.8:6379')) },
    ],
    bodyLimit: '1mb',
    version: 'test',
  });
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  jest.restoreAllMocks();
});

it('/readyz answers only `unavailable` per check and logs the driver error', async () => {
  const warn = jest.spyOn(logger, 'warn');
  const res = await fetch(`${base}/readyz`);
  expect(res.status).toBe(503);
  const text = await res.text();
  expect(JSON.parse(text)).toEqual({ status: 'unavailable', detail: 'Not answering: database, redis', checks: { database: 'unavailable', redis: 'unavailable' } });
  expect(text).not.toMatch(/ECONNREFUSED|10\.0\.3|password|sob"/);
  const logged = JSON.stringify(warn.mock.calls);
  expect(logged).toContain('readiness check failed');
  expect(logged).toContain('"event":"readiness.database"');
  expect(logged).toContain('ECONNREFUSED 10.0.3.8:6379');
});

it('/metrics still serves process and HTTP metrics when the database does not answer', async () => {
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toContain('process_cpu_user_seconds_total');
  expect(text).toContain('sob_http_request_duration_seconds');
  expect(text).not.toMatch(/sob_work_items\{/);
  expect(text).not.toContain('ECONNREFUSED');
});
