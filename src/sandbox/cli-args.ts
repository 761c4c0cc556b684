/**
 * Command-line options of `scripts/sandbox.ts` (`npm run sandbox -- …`).
 *
 *     --port-base <n>       ports n, n+1, n+2 for care-team-a, care-team-b, referring-ehr (default: free ports)
 *     --auth smart|none     SMART Backend Services on every server (default smart)
 *     --latency <ms>        latency added to every request (default 0)
 *     --fault <spec>        a fault rule, repeatable; syntax in faults/fault-spec.ts, e.g.
 *                           'care-team-a:GET /Observation*:429:retryAfter=2:nth=3'
 *     --faults <file.json>  fault rules from a JSON file (array of {server, match, action, …})
 *     --seed <n>            seed of probabilistic faults (default 1)
 *     --fixtures <dir>      where <server>.json fixtures are (default ./fixtures)
 *     --state-dir <dir>     where the client key pair is kept (default ./.sandbox)
 *     --help
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseFaultFile, parseFaultSpec, type ServerFaultRule } from './faults/fault-spec';
import type { SandboxWorldOptions } from './sandbox-world';

export const SANDBOX_CLI_USAGE = `Usage: npm run sandbox -- [options]

  --port-base <n>       ports n, n+1, n+2 for care-team-a, care-team-b, referring-ehr (default: free ports)
  --auth smart|none     SMART Backend Services auth on every server (default smart)
  --latency <ms>        latency added to every request (default 0)
  --fault <spec>        fault rule, repeatable: <server>:<METHOD> <path>:<action>[:option=value…]
                        e.g. 'care-team-a:GET /Observation*:429:retryAfter=2:nth=3'
                        actions: latency(ms=) 429 503 500 hang reset malformed-json truncated
                                 expired-token foreign-next-link(origin=) search-outcome(message=)
                                 ignore-parameter(name=) ignore-if-none-exist paging-loop stuck-paging
                                 endless-paging redirect(location=)
                        options: retryAfter= retryAfterFormat=seconds|http-date nth= from= to= p= seed=
  --faults <file.json>  fault rules from a JSON file: [{"server","match","action":{"kind",…},"nth",…}]
  --seed <n>            seed of probabilistic faults (default 1)
  --fixtures <dir>      directory of <server>.json fixtures (default ./fixtures)
  --state-dir <dir>     where the client key pair is kept (default ./.sandbox)
  --help                this text
`;

export type CliCommand = { kind: 'help' } | { kind: 'start'; options: SandboxWorldOptions };

export function parseSandboxCliArgs(argv: readonly string[], readFile: (file: string) => string = (file) => readFileSync(file, 'utf8')): CliCommand {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'port-base': { type: 'string' },
      auth: { type: 'string' },
      latency: { type: 'string' },
      fault: { type: 'string', multiple: true },
      faults: { type: 'string' },
      seed: { type: 'string' },
      fixtures: { type: 'string' },
      'state-dir': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    return { kind: 'help' };
  }
  const auth = values.auth ?? 'smart';
  if (auth !== 'smart' && auth !== 'none') {
    throw new Error('--auth must be smart or none');
  }
  const faults: ServerFaultRule[] = (values.fault ?? []).map(parseFaultSpec);
  if (values.faults) {
    faults.push(...parseFaultFile(JSON.parse(readFile(values.faults)) as unknown));
  }
  return {
    kind: 'start',
    options: {
      portBase: integer(values['port-base'], '--port-base', 1, 65533),
      auth,
      latencyMs: integer(values.latency, '--latency', 0, 600_000),
      seed: integer(values.seed, '--seed', 0, 2 ** 31),
      fixturesDir: values.fixtures,
      stateDir: values['state-dir'],
      faults,
    },
  };
}

function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new Error(`${flag} must be an integer between ${min} and ${max}`);
  }
  return number;
}
