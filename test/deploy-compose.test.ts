/**
 * docker-compose.yml is for users (no Docker engine here), so what can be checked without one is:
 * it parses, and each service of ours, given what compose would interpolate, passes the service's
 * own configuration check — a stack that cannot start its API or worker fails here, not at a user's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { load, YAML11_SCHEMA } from 'js-yaml';
import { ConfigError, loadConfig } from '../src/config';

interface ComposeService {
  readonly build?: unknown;
  readonly environment?: Record<string, string | number | boolean | null>;
  readonly volumes?: readonly string[];
}

const ROOT = path.join(__dirname, '..');
// Compose files are YAML 1.1, merge keys (`<<: *app-env`) included.
const compose = load(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { schema: YAML11_SCHEMA }) as { services: Record<string, ComposeService> };

/** The values a user would set for the variables compose requires (`${VAR:?…}`). */
const REQUIRED = {
  AUTH_JWKS_URL: 'https://idp.example.org/.well-known/jwks.json',
  AUTH_ISSUER: 'https://idp.example.org',
  AUTH_AUDIENCE: 'second-opinion-bridge',
  SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  POSTGRES_PASSWORD: 'a-long-random-password',
};

/**
 * Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?message}` with `vars`
 * (https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/).
 */
function interpolate(value: string, vars: Readonly<Record<string, string>>, missing: string[]): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    const set = vars[name];
    if (set !== undefined && set !== '') return set;
    if (op === ':?') missing.push(name);
    return op === ':-' ? (arg ?? '') : '';
  });
}

function environmentOf(service: ComposeService, vars: Readonly<Record<string, string>>): { env: NodeJS.ProcessEnv; missing: string[] } {
  const missing: string[] = [];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(service.environment ?? {})) env[k] = interpolate(String(v ?? ''), vars, missing);
  return { env, missing };
}

const ours = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

describe('docker-compose.yml', () => {
  it('has the API and the worker, built from this repository', () => {
    expect(ours.map(([name]) => name).sort()).toEqual(['api', 'worker']);
    expect(ours.map(([, s]) => s.environment?.['ROLE']).sort()).toEqual(['api', 'worker']);
  });

  it.each(ours)('%s starts with what compose gives it once the required variables are set', (_name, service) => {
    const { env, missing } = environmentOf(service, REQUIRED);
    expect(missing).toEqual([]);
    let problems: readonly string[] = [];
    try {
      loadConfig(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([]);
  });

  it.each(ours)('%s refuses to be brought up without a JWKS URL, its audience and issuer, a secrets key or a database password (compose says which)', (_name, service) => {
    expect(environmentOf(service, {}).missing.sort()).toEqual(['AUTH_AUDIENCE', 'AUTH_ISSUER', 'AUTH_JWKS_URL', 'POSTGRES_PASSWORD', 'SECRETS_KEY']);
  });

  it('ships no default database password (a known one would be the production one)', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect({ name, missing: environmentOf(service, {}).missing.includes('POSTGRES_PASSWORD') || !JSON.stringify(service.environment ?? {}).includes('POSTGRES_PASSWORD') }).toEqual({ name, missing: true });
    }
  });

  it('the API and the worker share the blob store the service writes under DATA_DIR', () => {
    for (const [, service] of ours) {
      const dataDir = String(service.environment?.['DATA_DIR']);
      expect(service.volumes?.some((v) => v.endsWith(`:${dataDir}`))).toBe(true);
    }
  });

  it('the image makes DATA_DIR before it drops to the node user (a named volume takes its owner from the image)', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const dataDir = String(compose.services['api']?.environment?.['DATA_DIR']);
    const userAt = dockerfile.indexOf('USER node');
    const chownAt = dockerfile.indexOf(`chown node:node ${dataDir}`);
    expect(chownAt).toBeGreaterThan(0);
    expect(chownAt).toBeLessThan(userAt);
  });
});
