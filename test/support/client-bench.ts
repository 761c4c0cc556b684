/**
 * A FHIR client tested without the service: a local HTTP server standing for the recipient (its
 * answers set by each test, `server.handle`), and a Redis key prefix of the test file's own for the
 * clients made against it (`makeClient(redis, env.prefix, server.url)`).
 * @packageDocumentation
 */
import type { Redis } from 'ioredis';
import { startTestServer, type TestServer } from '../fhir/support/http-server';
import { testRedis, type TestRedis } from '../fhir/support/redis';

/** What {@link startClientBench} starts. */
export interface ClientBench {
  /** The file's Redis key prefix and its connections. */
  readonly env: TestRedis;
  /** A connection for the clients. */
  readonly redis: Redis;
  readonly server: TestServer;
  /** Closes the server, deletes the prefix's keys and closes the connections. */
  stop(): Promise<void>;
}

/** Starts a {@link ClientBench}; `name` goes into the Redis key prefix. */
export async function startClientBench(name: string): Promise<ClientBench> {
  const env = testRedis(name);
  const redis = env.connect();
  const server = await startTestServer();
  return {
    env,
    redis,
    server,
    async stop() {
      await server.close();
      await env.cleanup();
    },
  };
}
