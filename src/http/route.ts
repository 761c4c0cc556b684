import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { ApiRole, Principal, ScopedTokenAuth } from './auth';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** What a handler answers; handlers that stream (PDFs) write to `res` themselves and return nothing. */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HandlerContext<B, Q, P> {
  readonly body: B;
  readonly query: Q;
  readonly params: P;
  /** Set on every route that is not public. */
  readonly principal: Principal;
  /** Members of the JSON body its schema does not know, dropped (paths, see `ignored-fields.ts`); empty without a body. */
  readonly ignoredFields: readonly string[];
  readonly req: Request;
  readonly res: Response;
}

/**
 * A request body the handler reads from `req` itself, as a stream (a multipart upload): no schema
 * validation happens before the handler and nothing is buffered (the app's JSON parser only touches
 * JSON content types). Documented in OpenAPI as the route's request body.
 */
export interface StreamBodySpec {
  /** e.g. `multipart/form-data`. */
  readonly contentType: string;
  readonly description: string;
}

export interface ResponseSpec {
  readonly description: string;
  readonly schema?: z.ZodType;
  readonly contentType?: string;
}

/**
 * One HTTP route: its contract (schemas, roles, responses) and its handler. The same definition
 * drives express, request validation, the OpenAPI document and the auth tests, so no route can
 * exist without a role rule.
 */
export interface RouteDefinition<B = unknown, Q = unknown, P = unknown> {
  readonly method: HttpMethod;
  /** Express path, e.g. `/api/cases/:id`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  /** Who may call it; `public` routes need no token. */
  readonly roles: readonly ApiRole[] | 'public';
  readonly body?: z.ZodType<B>;
  /** Escape hatch for a streamed body (no `body` schema then): the handler reads `req`. */
  readonly streamBody?: StreamBodySpec;
  /** Another kind of bearer token this route accepts besides staff JWTs (a family portal's upload token). */
  readonly scopedToken?: ScopedTokenAuth;
  readonly query?: z.ZodType<Q>;
  readonly params?: z.ZodType<P>;
  readonly responses: Readonly<Record<number, ResponseSpec>>;
  /** FHIR routes answer errors as OperationOutcome instead of problem+json. */
  readonly fhir?: boolean;
  readonly handler: (ctx: HandlerContext<B, Q, P>) => Promise<Reply | void>;
}

/** Identity helper that keeps the handler's types tied to its schemas. */
export function defineRoute<B = undefined, Q = Record<string, never>, P = Record<string, never>>(
  route: RouteDefinition<B, Q, P>,
): RouteDefinition<B, Q, P> {
  return route;
}

/** Type-erased form used by the registry. */
export type AnyRoute = RouteDefinition<never, never, never>;
