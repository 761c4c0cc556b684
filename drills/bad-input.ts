/**
 * Drill: bad input on every POST, PUT and PATCH route of the route table (`apiRoutes`, so routes
 * added later are drilled too). For each, `bodiesPerRoute` seeded fast-check bodies (garbage of
 * every shape, prototype-pollution keys, broken JSON, and mutations of a valid sample) are sent
 * with a token holding every role and real ids in the path. Then every GET route with a query
 * schema gets bad values for each of its query parameters (`fuzz-queries.ts`). No answer may be a
 * 5xx (or no answer at all), and every 4xx must name the problem (problem+json `detail`, or an
 * OperationOutcome with diagnostics or expression).
 */
import { API_ROLES } from '../src/http/auth';
import type { AnyRoute } from '../src/http/route';
import { apiRoutes, type ApiDeps } from '../src/http/routes';
import { startSandboxServer, type SandboxServer } from '../src/sandbox';
import { DrillLog, runDrill, type DrillPrinter, type DrillResult } from './support/drill-log';
import { startDrillService, type DrillService } from './support/drill-service';
import { fixtureIntake } from './support/fixtures';
import { fuzzBodies } from './support/fuzz-bodies';
import { fuzzQueries } from './support/fuzz-queries';
import { namesTheProblem } from './support/problem-answer';
import { concretePath, validSample, type RealIds } from './support/route-targets';

/** Options of the drill (the quick jest variants pass smaller ones). */
export interface BadInputOptions {
  readonly bodiesPerRoute: number;
  /** Bad values per query parameter of each GET route (at least the fixed ones of `fuzz-queries.ts`). */
  readonly valuesPerQueryKey?: number;
  readonly seed: number;
  /** Requests in flight at once. */
  readonly parallel?: number;
  readonly print?: DrillPrinter;
}

/** How long one answer may take before it counts as no answer. */
const ANSWER_TIMEOUT_MS = 15_000;

interface RouteTally {
  sent: number;
  byClass: Record<string, number>;
  serverErrors: { status: number; body: string }[];
  unnamed: { status: number; body: string; answer: string }[];
}

/** Routes that read no body at all (no schema, no stream) get a fifth of the bodies: there is less to break. */
export function bodyCount(route: AnyRoute, bodiesPerRoute: number): number {
  return route.body || route.streamBody ? bodiesPerRoute : Math.ceil(bodiesPerRoute / 5);
}

/** The routes that take a body, from the route table itself. */
export function bodyRoutes(): AnyRoute[] {
  return apiRoutes({} as ApiDeps).filter((r) => r.method === 'post' || r.method === 'put' || r.method === 'patch');
}

async function setUp(svc: DrillService, server: SandboxServer, token: string): Promise<RealIds> {
  const json = async (method: string, path: string, body: unknown, expected: number): Promise<Record<string, unknown>> => {
    const res = await svc.request(method, path, { token, body });
    if (res.status !== expected) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const endpoint = await json('POST', '/api/endpoints', { name: 'fuzz', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 }, 201);
  const created = await json('POST', '/api/cases', fixtureIntake(), 201);
  const caseId = String(created.id);
  const source = await json('POST', `/api/cases/${caseId}/sources`, { endpointId: endpoint.id, patient: { id: 'p1' } }, 201);
  // p1 is not the fixture intake's child: the source waits for review, and the case manager chooses p1.
  await json('POST', `/api/cases/${caseId}/sources/${String(source.id)}/patient`, { patientId: 'p1' }, 200);
  const pull = await json('POST', `/api/cases/${caseId}/pulls`, {}, 202);
  return { caseId, endpointId: String(endpoint.id), sourceId: String(source.id), pullId: String(pull.pullId), baseUrl: server.baseUrl };
}

/** The GET routes with a query schema, and the keys of that schema, from the route table itself. */
export function queryRoutes(): { route: AnyRoute; keys: string[] }[] {
  return apiRoutes({} as ApiDeps)
    .filter((r) => r.method === 'get' && r.query !== undefined)
    .map((route) => ({ route, keys: Object.keys((route.query as unknown as { shape?: Record<string, unknown> }).shape ?? {}) }))
    .filter((q) => q.keys.length > 0);
}

async function send(svc: DrillService, method: string, path: string, token: string, body: string | undefined): Promise<{ status: number; contentType: string; text: string }> {
  try {
    const res = await fetch(`${svc.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  } catch (err) {
    return { status: 0, contentType: '', text: err instanceof Error ? err.message : String(err) };
  }
}

/** Runs the bad-input drill over every POST/PUT/PATCH route of the route table. */
export async function badInputDrill(options: BadInputOptions): Promise<DrillResult> {
  const log = new DrillLog('bad input', options.print);
  let svc: DrillService | undefined;
  let server: SandboxServer | undefined;
  return runDrill(log, async () => {
    try {
      svc = await startDrillService({ env: { ROLE: 'api' } });
      server = await startSandboxServer({ name: 'fuzz-ehr', auth: 'none' });
      await server.load([{ resourceType: 'Patient', id: 'p1', name: [{ family: 'Quill', given: ['Ada'] }], birthDate: '2016-01-02' }]);
      const token = await svc.token([...API_ROLES]);
      const ids = await setUp(svc, server, token);
      const routes = bodyRoutes();
      log.step(`${routes.length} POST/PUT/PATCH routes × ${options.bodiesPerRoute} bodies (${Math.ceil(options.bodiesPerRoute / 5)} where no body is read; fast-check seed ${options.seed}); real case, endpoint, source, pull ids`);
      const tallies = new Map<string, RouteTally>();
      /** Sends every request (`inputs`: bodies, or query strings) to one route, `parallel` at once, and tallies the answers. */
      const drill = async (key: string, method: string, path: (input: string) => string, inputs: readonly string[], asBody: boolean): Promise<RouteTally> => {
        const tally: RouteTally = { sent: 0, byClass: {}, serverErrors: [], unnamed: [] };
        tallies.set(key, tally);
        let next = 0;
        const workers = Array.from({ length: options.parallel ?? 8 }, async () => {
          for (let i = next++; i < inputs.length; i = next++) {
            const input = inputs[i] ?? '';
            const answer = await send(svc as DrillService, method, path(input), token, asBody ? input : undefined);
            tally.sent += 1;
            const klass = answer.status === 0 ? 'none' : `${Math.floor(answer.status / 100)}xx`;
            tally.byClass[klass] = (tally.byClass[klass] ?? 0) + 1;
            if (answer.status === 0 || answer.status >= 500) tally.serverErrors.push({ status: answer.status, body: input.slice(0, 300) });
            else if (answer.status >= 400 && !namesTheProblem(answer.contentType, answer.text)) {
              tally.unnamed.push({ status: answer.status, body: input.slice(0, 300), answer: answer.text.slice(0, 300) });
            }
          }
        });
        await Promise.all(workers);
        return tally;
      };
      const report = (key: string, tally: RouteTally, what: string, note = ''): void => {
        log.step(`${key}: ${tally.sent} ${what} → ${Object.entries(tally.byClass).sort().map(([k, n]) => `${k} ${n}`).join(', ')}${note}`);
        for (const e of tally.serverErrors.slice(0, 3)) log.step(`  ${key} answered ${e.status || 'nothing'} to: ${e.body}`);
        for (const u of tally.unnamed.slice(0, 3)) log.step(`  ${key} answered ${u.status} without naming the problem to: ${u.body} → ${u.answer}`);
      };
      for (const [r, route] of routes.entries()) {
        const key = `${route.method.toUpperCase()} ${route.path}`;
        const sample = route.body ? validSample(route, ids) : undefined;
        const bodies = fuzzBodies(sample, bodyCount(route, options.bodiesPerRoute), options.seed + r);
        const path = concretePath(route, ids);
        const tally = await drill(key, route.method.toUpperCase(), () => path, bodies, true);
        report(key, tally, 'bodies', sample === undefined ? (route.body ? ' (no valid sample: garbage only)' : route.streamBody ? ' (streamed body route)' : ' (no body schema)') : '');
      }
      const queried = queryRoutes();
      const perKey = Math.max(options.valuesPerQueryKey ?? 0, fuzzQueries('k', 0, 0).length);
      log.step(`${queried.length} GET routes with query parameters × ${perKey} bad values per parameter`);
      let queriesSent = 0;
      for (const [r, { route, keys }] of queried.entries()) {
        const key = `GET ${route.path}?`;
        const path = concretePath(route, ids);
        const queries = keys.flatMap((k, i) => fuzzQueries(k, perKey, options.seed + r * 31 + i));
        const tally = await drill(key, 'GET', (query) => `${path}?${query}`, queries, false);
        queriesSent += tally.sent;
        report(`${key} ${keys.join(', ')}`, tally, 'queries');
      }
      let sent = 0;
      let fives = 0;
      let unnamed = 0;
      for (const [key, tally] of tallies) {
        sent += tally.sent;
        fives += tally.serverErrors.length;
        unnamed += tally.unnamed.length;
        log.equal(`${key}: 5xx or no answer`, tally.serverErrors.length, 0);
        log.equal(`${key}: 4xx not naming the problem`, tally.unnamed.length, 0);
      }
      log.equal('bodies sent', sent - queriesSent, routes.reduce((n, route) => n + bodyCount(route, options.bodiesPerRoute), 0));
      log.summarize(`${sent - queriesSent} bodies to ${routes.length} routes, ${queriesSent} bad queries to ${queried.length} GET routes; 5xx/no answer ${fives}; unnamed 4xx ${unnamed}`);
    } finally {
      await svc?.stop();
      await server?.stop();
    }
  });
}
