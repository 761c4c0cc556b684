import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Config } from './config';
import type { Database } from './db/database';
import { openDatabase } from './db/open';
import { createApp } from './http/app';
import { createTokenVerifier } from './http/auth';
import { apiRoutes } from './http/routes';
import { errorFields, logger } from './log';
import { bullConnectionOptions, createClientConnection, pingRedis } from './redis';
import { startWorkers, type RunningWorkers } from '../queues';
import { loadDomainData } from './cases/domain-data';
import { SERVICE_VERSION } from './version';

/** A running service: whichever roles the config asked for. */
export interface RunningService {
  readonly config: Config;
  readonly db: Database;
  /** Base URL of the HTTP API when the role includes `api`. */
  readonly url?: string;
  stop(): Promise<void>;
}

/**
 * Starts the roles the config names: `api` (HTTP), `worker` (BullMQ processors) or `all`.
 * Fails fast when the database cannot be opened or migrated; Redis being down does not stop the
 * API from starting (readiness reports it) and workers reconnect on their own.
 */
export async function startService(config: Config): Promise<RunningService> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
  const domain = loadDomainData();
  const redis: Redis = createClientConnection(config.redisUrl);
  redis.on('error', () => undefined); // readiness reports it; reconnects on its own
  let server: http.Server | undefined;
  let workers: RunningWorkers | undefined;
  let url: string | undefined;

  try {
    if (config.role === 'worker' || config.role === 'all') {
      workers = await startWorkers({ db, config, domain, connection: () => bullConnectionOptions(config.redisUrl) });
    }
    if (config.role === 'api' || config.role === 'all') {
      const app = createApp({
        db,
        verifyToken: createTokenVerifier(config.auth),
        routes: apiRoutes({ db, config, domain }),
        readiness: [
          { name: 'database', check: () => db.ping() },
          { name: 'redis', check: () => pingRedis(redis) },
        ],
        bodyLimit: config.bodyLimit,
        version: SERVICE_VERSION,
      });
      server = http.createServer(app);
      server.keepAliveTimeout = 65_000;
      const listening = server;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(config.port, config.host, () => resolve());
      });
      const address = listening.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
      url = `http://${host}:${address.port}`;
      logger.info('api listening', { port: address.port, backend: db.backend });
    }
  } catch (err) {
    await workers?.close().catch(() => undefined);
    redis.disconnect();
    await db.close().catch(() => undefined);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    db,
    url,
    stop() {
      stopping ??= (async () => {
        if (server) {
          const closing = server;
          await new Promise<void>((resolve) => {
            closing.close(() => resolve());
            closing.closeIdleConnections();
          });
        }
        await workers?.close().catch((err: unknown) => logger.error('worker shutdown failed', errorFields(err)));
        redis.disconnect();
        await db.close();
      })();
      return stopping;
    },
  };
}
