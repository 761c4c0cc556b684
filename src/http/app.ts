import express, { type NextFunction, type Request, type Response } from 'express';
import type { Database } from '../db/database';
import { logger } from '../log';
import { auditBeforeAnswer, auditTrail } from './audit-trail';
import { authenticate, requireRole, type TokenVerifier } from './auth';
import { caseAccess, type CaseAccessModes } from './case-access';
import { fhirFormat } from './fhir-format';
import { ignoredFields } from './ignored-fields';
import { errorHandler, unsupportedCharset } from './errors';
import { buildOpenApi } from './openapi';
import { MAX_BODY_DEPTH, nestsDeeperThan } from './json-depth';
import { createMetrics, type EndpointCircuits, type QueueCounts } from './metrics';
import { fieldProblem, HttpProblem, validationProblem } from './problem';
import { unstorableTextAt } from './json-text';
import { requestContext } from './request-context';
import type { AnyRoute, HandlerContext, RouteDefinition } from './route';
import { readinessAnswer, type ReadinessCheck } from './readiness-check';

export interface AppOptions {
  readonly db: Database;
  readonly verifyToken: TokenVerifier;
  readonly routes: readonly AnyRoute[];
  readonly readiness: readonly ReadinessCheck[];
  readonly bodyLimit: string;
  readonly version: string;
  /** Which cases specialists and EHR clients may open (defaults: see case-access.ts). */
  readonly caseAccess?: CaseAccessModes;
  /** Jobs per queue and state for `/metrics` (`sob_queue_jobs`); omitted, that gauge is not exported. */
  readonly queueCounts?: QueueCounts;
  /** Each endpoint's circuit for `/metrics` (`sob_endpoint_circuit`); omitted, that gauge is not exported. */
  readonly endpointCircuits?: EndpointCircuits;
  /** The program's IANA time zone (`PROGRAM_TIME_ZONE`): the business days of `sob_cases_sla`'s `due_soon`. */
  readonly programTimeZone?: string;
}

/** Whether the request carries a body (RFC 9112 §6.3: a Content-Length above 0, or Transfer-Encoding). */
function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** 400 naming the first field (of the body, or of `where`) holding text PostgreSQL cannot store. */
function refuseUnstorableText(value: unknown, where?: string): void {
  const path = unstorableTextAt(value);
  if (path === undefined) return;
  const problem = fieldProblem(path, 'holds a NUL character (\\u0000) or an unpaired surrogate: not text that can be stored', where);
  throw new HttpProblem(400, 'Invalid request', `${problem.field}: ${problem.detail}`, [problem]);
}

function handle<B, Q, P>(route: RouteDefinition<B, Q, P>) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      const params = route.params ? route.params.safeParse(req.params) : { success: true as const, data: req.params };
      if (!params.success) throw validationProblem(params.error, 'params');
      refuseUnstorableText(req.query, 'query');
      const query = route.query ? route.query.safeParse(req.query) : { success: true as const, data: req.query };
      if (!query.success) throw validationProblem(query.error, 'query');
      let body: unknown = undefined;
      let ignored: readonly string[] = [];
      if (route.body) {
        // No body at all (a POST whose fields are all optional, sent bare): the empty object, for the
        // route's schema to judge. A body of another media type (not parsed: still undefined) is a 415.
        // Any JSON text is parsed (RFC 8259 §2: `null`, `"x"` and `5` are JSON texts too), and the
        // schema says what is wrong with one that is not an object: "(body): expected object".
        if (req.body === undefined && !hasBody(req)) req.body = {};
        if (req.body === undefined) {
          throw new HttpProblem(415, 'Unsupported Media Type', 'Send a JSON body with Content-Type: application/json.');
        }
        if (nestsDeeperThan(req.body, MAX_BODY_DEPTH)) {
          throw new HttpProblem(400, 'Invalid request', `The JSON body nests deeper than ${MAX_BODY_DEPTH} levels; no request to this API needs that.`);
        }
        refuseUnstorableText(req.body);
        const parsed = route.body.safeParse(req.body);
        if (!parsed.success) throw validationProblem(parsed.error);
        body = parsed.data;
        ignored = ignoredFields(req.body, body);
        // How many, not which: a key name is the caller's text.
        if (ignored.length > 0) logger.info('request body members ignored', { route: route.path, method: route.method, count: ignored.length });
      }
      const ctx = {
        body,
        query: query.data,
        params: params.data,
        principal: req.principal ?? { sub: 'anonymous', roles: [] },
        ignoredFields: ignored,
        req,
        res,
      } as HandlerContext<B, Q, P>;
      const reply = await route.handler(ctx);
      if (!reply || res.headersSent) return;
      for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
      res.status(reply.status);
      if (reply.body === undefined) {
        res.end();
      } else if (Buffer.isBuffer(reply.body) || typeof reply.body === 'string') {
        res.type(reply.contentType ?? 'application/octet-stream').send(reply.body);
      } else {
        res.type(reply.contentType ?? 'application/json').send(JSON.stringify(reply.body));
      }
    } catch (err) {
      next(err);
    }
  };
}

/** The paths of FHIR routes as patterns over the raw path (`:id` matches one segment, encoded or not). */
function fhirPathPatterns(routes: readonly AnyRoute[]): RegExp[] {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return routes
    .filter((route) => route.fhir === true)
    // Ignoring case, as express matches routes: `/API/CASES/{id}/FHIR` runs the FHIR route.
    .map((route) => new RegExp(`^${route.path.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : escape(part))).join('/')}/?$`, 'i'));
}

/** Per route path, its methods (HEAD with GET) and whether it is a FHIR route. */
function methodsByPath(routes: readonly AnyRoute[]): Map<string, { methods: string[]; fhir: boolean }> {
  const byPath = new Map<string, { methods: string[]; fhir: boolean }>();
  for (const route of routes) {
    const entry = byPath.get(route.path) ?? { methods: [], fhir: false };
    entry.methods.push(...(route.method === 'get' ? ['GET', 'HEAD'] : [route.method.toUpperCase()]));
    entry.fhir ||= route.fhir === true;
    byPath.set(route.path, entry);
  }
  return byPath;
}

/**
 * A path the API has, asked with a method it does not take: 405 with `Allow` (RFC 9110 §15.5.6), an
 * OperationOutcome on a FHIR route (https://hl7.org/fhir/R4/http.html#2.21.0.3), not a 404 that says
 * the path does not exist. `OPTIONS` on such a path is answered here: 204 with `Allow` naming its
 * methods (RFC 9110 §9.3.7), without a token — it says only what the path takes, as the 405 does.
 * (No CORS: the API is not called from browsers of other origins.)
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-9.3.7
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.1
 */
function methodNotAllowed(allowed: { methods: string[]; fhir: boolean }) {
  const allow = [...allowed.methods, 'OPTIONS'].join(', ');
  return (req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    req.fhirRoute = allowed.fhir;
    next(new HttpProblem(405, 'Method Not Allowed', `${req.method} is not allowed here; this path takes ${allow}.`));
  };
}

/** The `charset` parameter of the request's Content-Type (lower-cased, quotes removed), if it has one. */
function charsetOf(req: Request): string | undefined {
  const match = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(req.headers['content-type'] ?? '');
  return match ? (match[2] ?? '').toLowerCase() : undefined;
}

/**
 * JSON bodies are UTF-8 (RFC 8259 §8.1: "JSON text exchanged between systems that are not part of a
 * closed ecosystem MUST be encoded using UTF-8"): a `charset` naming anything else (`utf-16`, which
 * the body parser would decode, `latin1`) is a 415 naming it, before the body is read. A JSON media
 * type without a charset, or with `utf-8`, goes on.
 * @see https://www.rfc-editor.org/rfc/rfc8259#section-8.1
 */
function utf8JsonOnly(req: Request, _res: Response, next: NextFunction): void {
  const charset = charsetOf(req);
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8' || !hasBody(req) || !/json/i.test(req.headers['content-type'] ?? '')) {
    next();
    return;
  }
  next(unsupportedCharset(charset));
}

/**
 * A path segment whose %-encoding does not decode (`%E0%A4%A`, `%zz`): express refuses it before any
 * route runs (a URIError with status 400). Named as a field problem — `params.<name>` when the path is
 * one of `routes` (the segment in the place of `:name`), `params` else — instead of a 400 saying
 * nothing of where (RFC 3986 §2.1: a `%` is followed by two hex digits, the octets UTF-8).
 * @see https://www.rfc-editor.org/rfc/rfc3986#section-2.1
 */
function undecodablePath(routes: readonly AnyRoute[]) {
  const patterns = [...new Set(routes.map((route) => route.path))].map((path) => path.split('/'));
  const decodes = (segment: string): boolean => {
    try {
      decodeURIComponent(segment);
      return true;
    } catch {
      return false;
    }
  };
  return (err: unknown, req: Request, _res: Response, next: NextFunction): void => {
    if (!(err instanceof URIError) || (err as { status?: unknown }).status !== 400) {
      next(err);
      return;
    }
    // express matches a path with or without its trailing slash.
    const segments = req.path.replace(/(.)\/$/, '$1').split('/');
    let name: string | undefined;
    for (const pattern of patterns) {
      if (pattern.length !== segments.length) continue;
      const places = pattern.map((part, i) => ({ part, segment: segments[i] ?? '' }));
      if (!places.every(({ part, segment }) => part.startsWith(':') || part.toLowerCase() === segment.toLowerCase())) continue;
      name = places.find(({ part, segment }) => part.startsWith(':') && !decodes(segment))?.part.slice(1);
      if (name !== undefined) break;
    }
    const problem = fieldProblem(name === undefined ? [] : [name], 'is not valid percent-encoding: each % must be followed by two hexadecimal digits, and the octets must be UTF-8', 'params');
    next(new HttpProblem(400, 'Invalid request', `${problem.field} (a segment of the path): ${problem.detail}.`, [problem]));
  };
}

/** Builds the express app from route definitions; every /api route is authenticated and role-checked. */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(requestContext);
  // Known before routing: an error express meets before the route runs (a path whose %-encoding does
  // not decode) is answered as the route would, an OperationOutcome on a FHIR path.
  const fhirPaths = fhirPathPatterns(options.routes);
  app.use((req: Request, _res: Response, next: NextFunction) => {
    req.fhirRoute = fhirPaths.some((pattern) => pattern.test(req.path));
    next();
  });
  app.use((_req: Request, res: Response, next: NextFunction) => {
    // A body is what its Content-Type says (a JSON error is never sniffed as HTML).
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  // Bodies are parsed per route, after authentication and the role and case checks: an anonymous
  // request is a 401 whatever its body, a path no route has a 404, and a FHIR route's parse errors
  // are OperationOutcomes.
  const jsonBody = express.json({
    limit: options.bodyLimit,
    type: ['application/json', 'application/fhir+json', 'application/*+json'],
    // Any JSON text (RFC 8259 §2), not only an object or an array: a top-level `null` is valid JSON,
    // and the route's schema names what is wrong with it instead of "not valid JSON".
    strict: false,
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const answer = await readinessAnswer(options.readiness);
    res.status(answer.status).json(answer.body);
  });
  const metrics = createMetrics(options.db, options.queueCounts, options.endpointCircuits, options.programTimeZone !== undefined ? { timeZone: options.programTimeZone } : {});
  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (err) {
      next(err);
    }
  });
  // Built when first asked for, not at each start (~65 ms of CPU a start under Jest, in every test file).
  let openApi: ReturnType<typeof buildOpenApi> | undefined;
  app.get('/openapi.json', (_req, res) => {
    openApi ??= buildOpenApi(options.routes, options.version);
    res.json(openApi);
  });

  // The scoped tokens some routes accept (an upload token): on any other route, a valid one is a 403
  // insufficient_scope, not a 401 (auth.ts, foreignScopedPrincipal).
  const scopedKinds = options.routes.flatMap((route) => (route.scopedToken ? [route.scopedToken] : []));
  const verify = authenticate(options.verifyToken, undefined, scopedKinds);
  const audit = auditTrail(options.db);
  const auditFirst = auditBeforeAnswer(options.db);
  const accessModes: CaseAccessModes = options.caseAccess ?? { specialist: 'unless-assigned-elsewhere', ehr: 'linked-or-unbound' };
  for (const route of options.routes) {
    // Case routes a specialist or an EHR client may call: which cases they may open is checked too.
    const roles = route.roles === 'public' ? [] : route.roles;
    const onCase = route.path.startsWith('/api/cases/:id') && (roles.includes('specialist') || roles.includes('ehr'));
    const chain = [
      metrics.observe(route.path),
      (req: Request, res: Response, next: NextFunction) => {
        req.fhirRoute = route.fhir === true;
        // Answers carry PHI (or may, errors included): no browser or shared cache keeps them.
        if (route.roles !== 'public') res.setHeader('Cache-Control', 'no-store');
        next();
      },
      ...(route.roles === 'public'
        ? []
        : route.scopedToken
          ? // The audit trail starts before authentication, so that a valid token refused by it (an
            // upload token of another case: it names its principal, then refuses) is logged against
            // the case it tried; a request reaching its handler is on record before it runs (audit-trail.ts).
            // Only its own kind of scoped token: requireRole(…, true) lets any scoped principal through.
            [audit, authenticate(options.verifyToken, route.scopedToken), requireRole(route.roles, true)]
          : [audit, verify, requireRole(route.roles)]),
      ...(onCase ? [caseAccess(options.db, accessModes, roles)] : []),
      ...(route.fhir === true ? [fhirFormat] : []),
      ...(route.body ? [utf8JsonOnly, jsonBody] : []),
      ...(route.roles === 'public' ? [] : [auditFirst]),
      handle(route),
    ];
    app[route.method](route.path, ...chain);
  }

  for (const [path, allowed] of methodsByPath(options.routes)) app.all(path, methodNotAllowed(allowed));
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) app.all(path, methodNotAllowed({ methods: ['GET', 'HEAD'], fhir: false }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpProblem(404, 'Not Found', `No route for ${req.method} ${req.path.slice(0, 200)}.`));
  });
  app.use(undecodablePath(options.routes));
  app.use(errorHandler);
  return app;
}
