/**
 * The sandbox world: three FHIR servers on loopback, as the product meets them.
 * - `care-team-a`: a local care team's EHR, offset-style paging links;
 * - `care-team-b`: another local care team, HAPI-style token paging links (`_getpages`);
 * - `referring-ehr`: the referring physician's EHR, where reports are delivered (offset paging).
 *
 * Each is seeded from `fixtures/<name>.json` when that file exists (a transaction Bundle), and one
 * SMART Backend Services client (key pair under `.sandbox/`) is registered on all three.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import type { ServerFaultRule } from './faults/fault-spec';
import type { AuthMode } from './http/route-context';
import type { LoadResult } from './load';
import type { PagingStyle } from './paging/page-links';
import { startSandboxServer, type SandboxServer, type SandboxServerOptions } from './sandbox-server';
import { loadOrCreateClientCredentials, type ClientKeyAlgorithm, type SandboxClientCredentials } from './smart/client-keys';

export const WORLD_SERVER_NAMES = ['care-team-a', 'care-team-b', 'referring-ehr'] as const;
export type WorldServerName = (typeof WORLD_SERVER_NAMES)[number];

const PAGING: Record<WorldServerName, PagingStyle> = {
  'care-team-a': 'offset',
  'care-team-b': 'token',
  'referring-ehr': 'offset',
};

export const DEFAULT_CLIENT_ID = 'second-opinion-bridge';

export interface SandboxWorldOptions {
  /** Ports `portBase`, `portBase + 1`, `portBase + 2` (in WORLD_SERVER_NAMES order); default: free ports. */
  readonly portBase?: number;
  /** Default `smart`. */
  readonly auth?: AuthMode;
  /** Global latency per request on every server (ms). */
  readonly latencyMs?: number;
  /** Seed for probabilistic faults (each server gets seed, seed + 1, seed + 2). */
  readonly seed?: number;
  /** Where `<name>.json` fixtures are looked for; default `<cwd>/fixtures`. */
  readonly fixturesDir?: string;
  /** Where the client key pair is kept; default `<cwd>/.sandbox`. */
  readonly stateDir?: string;
  /** Default `second-opinion-bridge`. */
  readonly clientId?: string;
  /** Key type generated for a new client; default ES384. */
  readonly clientKeyAlgorithm?: ClientKeyAlgorithm;
  /** Fault rules to install (`server: '*'` for all). */
  readonly faults?: readonly ServerFaultRule[];
  /** Other server options applied to all three (maxCount, tokenLifetimeSeconds, …). */
  readonly serverOptions?: Partial<Omit<SandboxServerOptions, 'name' | 'port' | 'auth' | 'paging'>>;
}

export interface SandboxWorld {
  readonly servers: Readonly<Record<WorldServerName, SandboxServer>>;
  readonly careTeamA: SandboxServer;
  readonly careTeamB: SandboxServer;
  readonly referringEhr: SandboxServer;
  /** The registered client: id, keys, and where the private key file is. */
  readonly client: SandboxClientCredentials;
  /** What each fixture file loaded (undefined when there was no fixture). */
  readonly seeded: Readonly<Record<WorldServerName, LoadResult | undefined>>;
  stop(): Promise<void>;
}

export async function startSandboxWorld(options: SandboxWorldOptions = {}): Promise<SandboxWorld> {
  const fixturesDir = options.fixturesDir ?? path.resolve(process.cwd(), 'fixtures');
  const stateDir = options.stateDir ?? path.resolve(process.cwd(), '.sandbox');
  const client = await loadOrCreateClientCredentials(stateDir, options.clientId ?? DEFAULT_CLIENT_ID, options.clientKeyAlgorithm);
  for (const { server } of options.faults ?? []) {
    if (server !== '*' && !(WORLD_SERVER_NAMES as readonly string[]).includes(server)) {
      throw new Error(`Fault for unknown server "${server}"; servers are ${WORLD_SERVER_NAMES.join(', ')} or *`);
    }
  }
  const started: SandboxServer[] = [];
  try {
    for (const [index, name] of WORLD_SERVER_NAMES.entries()) {
      started.push(
        await startSandboxServer({
          ...options.serverOptions,
          name,
          port: options.portBase ? options.portBase + index : 0,
          auth: options.auth ?? 'smart',
          paging: PAGING[name],
          latencyMs: options.latencyMs ?? options.serverOptions?.latencyMs,
          seed: (options.seed ?? 1) + index,
        })
      );
    }
    const servers = Object.fromEntries(started.map((server) => [server.name, server])) as Record<WorldServerName, SandboxServer>;
    const seeded = {} as Record<WorldServerName, LoadResult | undefined>;
    for (const name of WORLD_SERVER_NAMES) {
      const server = servers[name];
      server.registerClient({ clientId: client.clientId, jwks: client.jwks });
      for (const { rule } of (options.faults ?? []).filter((fault) => fault.server === name || fault.server === '*')) {
        server.faults.add(rule);
      }
      seeded[name] = await seedFromFixture(server, path.join(fixturesDir, `${name}.json`));
    }
    return {
      servers,
      careTeamA: servers['care-team-a'],
      careTeamB: servers['care-team-b'],
      referringEhr: servers['referring-ehr'],
      client,
      seeded,
      stop: async () => {
        await Promise.all(started.map((server) => server.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((server) => server.stop()));
    throw err;
  }
}

async function seedFromFixture(server: SandboxServer, file: string): Promise<LoadResult | undefined> {
  if (!existsSync(file)) {
    return undefined;
  }
  const bundle = JSON.parse(await readFile(file, 'utf8')) as Bundle;
  return server.load(bundle);
}
