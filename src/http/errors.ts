import type { NextFunction, Request, Response } from 'express';
import type { OperationOutcome } from 'fhir/r4';
import { errorFields, logger } from '../log';
import { HttpProblem } from './problem';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by FHIR routes: errors become OperationOutcome instead of problem+json. */
    fhirRoute?: boolean;
  }
}

/** Maps body-parser and other framework errors to problems; unknown errors become a bare 500. */
export function toProblem(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  const type = (err as { type?: unknown }).type;
  const status = (err as { status?: unknown }).status;
  if (type === 'entity.too.large') {
    return new HttpProblem(413, 'Payload Too Large', 'The request body is larger than this route accepts.');
  }
  if (type === 'entity.parse.failed') {
    return new HttpProblem(400, 'Malformed JSON', 'The request body is not valid JSON.');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new HttpProblem(415, 'Unsupported Media Type', 'The request body encoding is not supported.');
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpProblem(status, 'Bad Request', 'The request could not be read.');
  }
  return new HttpProblem(500, 'Internal Server Error', 'Something went wrong on our side. The request id identifies it in our logs.');
}

/**
 * Where an issue is: a request parameter (a query parameter or a path segment, field `query.x` /
 * `params.x`) as `location` `http.x`, which R4 defines for HTTP errors; anything else (a body
 * element) as `expression`. `expression` is FHIRPath into a resource, which `query.version` is not.
 * @see https://hl7.org/fhir/R4/operationoutcome-definitions.html#OperationOutcome.issue.location
 */
function whereOf(field: string): { location: string[] } | { expression: string[] } {
  const parameter = /^(?:query|params)\.(.+)$/.exec(field);
  return parameter ? { location: [`http.${parameter[1] ?? ''}`] } : { expression: [field] };
}

/**
 * FHIR R4 OperationOutcome for an error on a FHIR route
 * (https://hl7.org/fhir/R4/operationoutcome.html, issue types from https://hl7.org/fhir/R4/valueset-issue-type.html).
 */
export function operationOutcome(problem: HttpProblem): OperationOutcome {
  const code =
    problem.status === 400 ? 'invalid'
    : problem.status === 401 ? 'login'
    : problem.status === 403 ? 'forbidden'
    : problem.status === 404 ? 'not-found'
    : problem.status === 405 || problem.status === 406 ? 'not-supported'
    : problem.status === 409 ? 'conflict'
    : problem.status === 413 ? 'too-costly'
    : 'exception';
  const issues: OperationOutcome['issue'] =
    problem.errors.length > 0
      ? problem.errors.map((e) => ({ severity: 'error', code, diagnostics: e.detail, ...whereOf(e.field) }))
      : [{ severity: problem.status >= 500 ? 'fatal' : 'error', code, diagnostics: problem.detail }];
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** The last express middleware: every error leaves as problem+json (or OperationOutcome), never a stack trace. */
export function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  const problem = toProblem(err);
  if (problem.status >= 500) logger.error('request failed', errorFields(err));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  const wwwAuthenticate = problem.extensions.wwwAuthenticate;
  if (typeof wwwAuthenticate === 'string') res.setHeader('WWW-Authenticate', wwwAuthenticate);
  const { wwwAuthenticate: _hidden, ...extensions } = problem.extensions;
  if (req.fhirRoute) {
    res.status(problem.status).type('application/fhir+json').send(JSON.stringify(operationOutcome(problem)));
    return;
  }
  res
    .status(problem.status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        instance: req.requestId ? `urn:request:${req.requestId}` : undefined,
        ...(problem.errors.length > 0 ? { errors: problem.errors } : {}),
        ...extensions,
      }),
    );
}
