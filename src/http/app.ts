import express, { type NextFunction, type Request, type Response } from 'express';
import type { Database } from '../db/database';
import { errorFields, logger } from '../log';
import { auditBeforeAnswer, auditTrail } from './audit-trail';
import { authenticate, requireRole, type TokenVerifier } from './auth';
import { caseAccess, type CaseAccessModes } from './case-access';
import { fhirFormat } from './fhir-format';
import { ignoredFields } from './ignored-fields';
import { errorHandler } from './errors';
import { buildOpenApi } from './openapi';
import { MAX_BODY_DEPTH, nestsDeeperThan } from './json-depth';
import { createMetrics, type EndpointCircuits, type QueueCounts } from './metrics';
import { fieldProblem, HttpProblem, validationProblem } from './problem';
import { unstorableTextAt } from './json-text';
import { requestContext } from './request-context';
import type { AnyRoute, HandlerContext, RouteDefinition } from './route';

export interface ReadinessCheck {
  readonly name: string;
  readonly check: () => Promise<void>;
}

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
}

const READINESS_TIMEOUT_MS = 2000;

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

/** One `/readyz` check: `ok`, or `unavailable` (the reason is logged, never answered). */
async function runCheck(check: ReadinessCheck): Promise<'ok' | 'unavailable'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), READINESS_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    // /readyz is public: the driver's message (internal addresses, user names) goes to the log only.
    logger.warn('readiness check failed', { event: `readiness.${check.name}`, ...errorFields(err) });
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
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
        // route's schema to judge. A body of another media type is a 415.
        if (req.body === undefined && !hasBody(req)) req.body = {};
        if (req.body === undefined || req.body === null || typeof req.body !== 'object') {
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
    .map((route) => new RegExp(`^${route.path.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : escape(part))).join('/')}/?$`));
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
 * the path does not exist. OPTIONS is left to express (it answers with `Allow`).
 */
function methodNotAllowed(allowed: { methods: string[]; fhir: boolean }) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method === 'OPTIONS') {
      next();
      return;
    }
    req.fhirRoute = allowed.fhir;
    res.setHeader('Allow', allowed.methods.join(', '));
    next(new HttpProblem(405, 'Method Not Allowed', `${req.method} is not allowed here; this path takes ${allowed.methods.join(', ')}.`));
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
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(options.readiness.map(async (c) => [c.name, await runCheck(c)] as const));
    const checks = Object.fromEntries(results);
    const down = results.filter(([, state]) => state !== 'ok').map(([name]) => name);
    res.status(down.length === 0 ? 200 : 503).json({
      status: down.length === 0 ? 'ready' : 'unavailable',
      ...(down.length > 0 ? { detail: `Not answering: ${down.join(', ')}` } : {}),
      checks,
    });
  });
  const metrics = createMetrics(options.db, options.queueCounts, options.endpointCircuits);
  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (err) {
      next(err);
    }
  });
  const openApi = buildOpenApi(options.routes, options.version);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  const verify = authenticate(options.verifyToken);
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
            [audit, authenticate(options.verifyToken, route.scopedToken), requireRole(route.roles, true)]
          : [audit, verify, requireRole(route.roles)]),
      ...(onCase ? [caseAccess(options.db, accessModes, roles)] : []),
      ...(route.fhir === true ? [fhirFormat] : []),
      ...(route.body ? [jsonBody] : []),
      ...(route.roles === 'public' ? [] : [auditFirst]),
      handle(route),
    ];
    app[route.method](route.path, ...chain);
  }

  for (const [path, allowed] of methodsByPath(options.routes)) app.all(path, methodNotAllowed(allowed));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpProblem(404, 'Not Found', `No route for ${req.method} ${req.path.slice(0, 200)}.`));
  });
  app.use(errorHandler);
  return app;
}
