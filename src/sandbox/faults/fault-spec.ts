/**
 * Fault rules from text (the CLI's `--fault`) or JSON (`--faults file.json`).
 *
 * Text syntax, colon-separated:
 *
 *     <server>:<METHOD> <path>:<action>[:<option>=<value>]...
 *
 * - `<server>`: `care-team-a`, `care-team-b`, `referring-ehr`, or `*` for every server.
 * - `<METHOD> <path>`: a request pattern (route-pattern.ts), e.g. `GET /Observation*`.
 * - `<action>`: `latency` | `429` (or `rate-limit`) | `503` (or `unavailable`) | `500` (or `server-error`) | `403` (or `forbidden`)
 *   | `hang` | `reset` | `malformed-json` | `truncated` | `expired-token` | `foreign-next-link` | `search-outcome` | `ignore-parameter`
 *   | `ignore-if-none-exist`
 *   | `paging-loop` | `stuck-paging` | `endless-paging` | `redirect`.
 * - options of the action: `ms=` (latency), `retryAfter=<seconds>`, `retryAfterFormat=seconds|http-date`,
 *   `fraction=` (truncated, default 0.5), `origin=` and `base=` (foreign-next-link), `location=` and `status=` (redirect),
 *   `message=`, `severity=` and `code=` (search-outcome), `name=` (ignore-parameter),
 *   `message=` (500);
 * - options of the trigger: `nth=`, `from=`, `to=`, `p=` (probability), `seed=`, `name=`.
 *   Option values may contain colons (`origin=http://127.0.0.1:9`).
 *
 * Examples:
 *
 *     care-team-a:GET /Observation*:429:retryAfter=2:nth=3
 *     care-team-b:GET /Binary/*:latency:ms=200
 *     *:GET /Patient*:503:retryAfter=1:retryAfterFormat=http-date:from=2:to=3
 *     care-team-a:GET /Observation*:reset:p=0.1:seed=42
 *
 * JSON: an array of `{ "server": "care-team-a", "match": "GET /Observation*", "action": {"kind": "rate-limit",
 * "retryAfterSeconds": 2}, "nth": 3 }` (the fields of {@link FaultRuleInput} plus `server`).
 */
import { z } from 'zod';
import type { FaultAction, FaultRuleInput } from './fault-types';

export interface ServerFaultRule {
  /** Server name, or `*` for all servers. */
  readonly server: string;
  readonly rule: FaultRuleInput;
}

const ACTION_ALIASES: Record<string, FaultAction['kind']> = {
  '429': 'rate-limit',
  '503': 'unavailable',
  '500': 'server-error',
  latency: 'latency',
  'rate-limit': 'rate-limit',
  unavailable: 'unavailable',
  'server-error': 'server-error',
  '403': 'forbidden',
  forbidden: 'forbidden',
  hang: 'hang',
  reset: 'reset',
  'malformed-json': 'malformed-json',
  truncated: 'truncated',
  'expired-token': 'expired-token',
  'foreign-next-link': 'foreign-next-link',
  'search-outcome': 'search-outcome',
  'ignore-parameter': 'ignore-parameter',
  'ignore-if-none-exist': 'ignore-if-none-exist',
  'paging-loop': 'paging-loop',
  'stuck-paging': 'stuck-paging',
  'endless-paging': 'endless-paging',
  redirect: 'redirect',
};

/** Parses one `--fault` value; throws an Error that explains what is wrong. */
export function parseFaultSpec(text: string): ServerFaultRule {
  const firstColon = text.indexOf(':');
  const secondColon = text.indexOf(':', firstColon + 1);
  if (firstColon <= 0 || secondColon < 0) {
    throw new Error(`Fault "${text}": expected <server>:<METHOD> <path>:<action>[:option=value…]`);
  }
  const server = text.slice(0, firstColon);
  const match = text.slice(firstColon + 1, secondColon);
  const [actionName, ...optionTexts] = text.slice(secondColon + 1).split(/:(?=[A-Za-z]+=)/);
  const kind = ACTION_ALIASES[actionName];
  if (!kind) {
    throw new Error(`Fault "${text}": unknown action "${actionName}" (one of ${Object.keys(ACTION_ALIASES).join(', ')})`);
  }
  const options = new Map<string, string>();
  for (const optionText of optionTexts) {
    const equals = optionText.indexOf('=');
    options.set(optionText.slice(0, equals), optionText.slice(equals + 1));
  }
  const rule = faultRuleSchema.parse({
    match,
    action: actionFromOptions(kind, options),
    nth: numberOption(options, 'nth'),
    from: numberOption(options, 'from'),
    to: numberOption(options, 'to'),
    probability: numberOption(options, 'p') ?? numberOption(options, 'probability'),
    seed: numberOption(options, 'seed'),
    name: options.get('name'),
  });
  const known = new Set(['nth', 'from', 'to', 'p', 'probability', 'seed', 'name', 'ms', 'retryAfter', 'retryAfterFormat', 'fraction', 'origin', 'location', 'status', 'message']);
  const unknown = [...options.keys()].filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new Error(`Fault "${text}": unknown option(s) ${unknown.join(', ')}`);
  }
  return { server, rule };
}

/** Parses the JSON of a faults file (an array of rules with `server`). */
export function parseFaultFile(json: unknown): ServerFaultRule[] {
  const rules = z.array(faultRuleSchema.extend({ server: z.string().min(1) })).parse(json);
  return rules.map(({ server, ...rule }) => ({ server, rule }));
}

function actionFromOptions(kind: FaultAction['kind'], options: Map<string, string>): unknown {
  switch (kind) {
    case 'latency':
      return { kind, ms: numberOption(options, 'ms') };
    case 'rate-limit':
    case 'unavailable':
      return { kind, retryAfterSeconds: numberOption(options, 'retryAfter'), retryAfterFormat: options.get('retryAfterFormat') };
    case 'server-error':
      return { kind, message: options.get('message') };
    case 'forbidden':
      return { kind, code: options.get('code') };
    case 'truncated':
      return { kind, fraction: numberOption(options, 'fraction') };
    case 'foreign-next-link':
      return { kind, origin: options.get('origin'), base: options.get('base') };
    case 'ignore-parameter':
      return { kind, name: options.get('name') };
    case 'search-outcome':
      return { kind, message: options.get('message'), severity: options.get('severity'), code: options.get('code') };
    case 'redirect':
      return { kind, location: options.get('location'), status: numberOption(options, 'status') };
    default:
      return { kind };
  }
}

function numberOption(options: Map<string, string>, name: string): number | undefined {
  const value = options.get(name);
  if (value === undefined) {
    return undefined;
  }
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw new Error(`Fault option ${name}=${value} is not a number`);
  }
  return number;
}

const retryAfter = {
  retryAfterSeconds: z.number().int().min(0).optional(),
  retryAfterFormat: z.enum(['seconds', 'http-date']).optional(),
};

const actionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('latency'), ms: z.number().min(0) }),
  z.object({ kind: z.literal('rate-limit'), ...retryAfter }),
  z.object({ kind: z.literal('unavailable'), ...retryAfter }),
  z.object({ kind: z.literal('server-error'), message: z.string().optional() }),
  z.object({ kind: z.literal('forbidden'), code: z.enum(['forbidden', 'security']).optional() }),
  z.object({ kind: z.literal('hang') }),
  z.object({ kind: z.literal('reset') }),
  z.object({ kind: z.literal('malformed-json') }),
  z.object({ kind: z.literal('truncated'), fraction: z.number().min(0).lt(1).optional() }),
  z.object({ kind: z.literal('expired-token') }),
  z.object({ kind: z.literal('foreign-next-link'), origin: z.url(), base: z.url().optional() }),
  z.object({ kind: z.literal('ignore-parameter'), name: z.string().min(1) }),
  z.object({ kind: z.literal('ignore-if-none-exist') }),
  z.object({ kind: z.literal('paging-loop') }),
  z.object({ kind: z.literal('stuck-paging') }),
  z.object({ kind: z.literal('endless-paging') }),
  z.object({
    kind: z.literal('search-outcome'),
    message: z.string().min(1),
    severity: z.enum(['fatal', 'error', 'warning', 'information']).optional(),
    code: z.string().min(1).optional(),
  }),
  z.object({
    kind: z.literal('redirect'),
    location: z.string().min(1),
    status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]).optional(),
  }),
]);

const faultRuleSchema = z.object({
  match: z.string().min(1),
  action: actionSchema,
  nth: z.number().int().min(1).optional(),
  from: z.number().int().min(1).optional(),
  to: z.number().int().min(1).optional(),
  probability: z.number().min(0).max(1).optional(),
  seed: z.number().int().optional(),
  name: z.string().optional(),
});
