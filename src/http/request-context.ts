import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { logger, withLogContext } from '../log';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

declare module 'express-serve-static-core' {
  interface Request {
    requestId?: string;
  }
}

/**
 * Gives every request an id (the caller's `X-Request-Id` when it looks safe, else a new UUID),
 * echoes it back, runs the rest of the request inside a log context carrying it, and writes one
 * access line per request with the route *pattern* (never the URL: paths and query strings may
 * carry identifiers).
 */
export function requestContext(req: Request, res: Response, next: NextFunction): void {
  const offered = req.headers['x-request-id'];
  const requestId = typeof offered === 'string' && SAFE_REQUEST_ID.test(offered) ? offered : randomUUID();
  req.requestId = requestId;
  res.setHeader('X-Request-Id', requestId);
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    withLogContext({ requestId }, () => {
      logger.http('request', {
        method: req.method,
        route: routePattern(req),
        status: res.statusCode,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        sub: req.principal?.sub,
      });
    });
  });
  withLogContext({ requestId }, next);
}

/** The matched express route pattern (`/api/cases/:id`), or `(unmatched)`. */
export function routePattern(req: Request): string {
  const route = (req as Request & { route?: { path?: unknown } }).route;
  return typeof route?.path === 'string' ? `${req.baseUrl}${route.path}` : '(unmatched)';
}
