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

/** A 415 naming a request header and what is wrong with it (`field` the header's name, as the upload routes name `content-type`). */
function headerProblem(header: string, detail: string): HttpProblem {
  return new HttpProblem(415, 'Unsupported Media Type', `${header}: ${detail}.`, [{ field: header, pointer: `#/headers/${header}`, detail }]);
}

/**
 * 415 for a JSON body whose `charset` is not UTF-8, naming it (RFC 8259 §8.1: JSON exchanged between
 * systems is UTF-8). The charset is the caller's text: only a short, visible-ASCII one is echoed.
 * @see https://www.rfc-editor.org/rfc/rfc8259#section-8.1
 */
export function unsupportedCharset(charset: string): HttpProblem {
  const named = /^[\x21-\x7E]{1,40}$/.test(charset) ? `charset "${charset}"` : 'the charset sent';
  return headerProblem('content-type', `${named} is not supported: a JSON body is UTF-8 (RFC 8259 §8.1); send charset=utf-8, or no charset`);
}

/** An error of Node's zlib (a body that does not inflate): its code is `Z_…` (`Z_DATA_ERROR`, `Z_BUF_ERROR`) or `ERR__…` of brotli. */
function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR__'));
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
  if (type === 'charset.unsupported') {
    const charset = (err as { charset?: unknown }).charset;
    return unsupportedCharset(typeof charset === 'string' ? charset : '');
  }
  if (type === 'encoding.unsupported') {
    // RFC 9110 §8.4: a Content-Encoding the server cannot decode is a 415.
    const encoding = (err as { encoding?: unknown }).encoding;
    const named = typeof encoding === 'string' && /^[\x21-\x7E]{1,40}$/.test(encoding) ? `"${encoding}"` : 'the one sent';
    return headerProblem('content-encoding', `${named} is not supported: send the body as is (identity), or gzip, deflate or br`);
  }
  if (status === 400 && isZlibError(err)) {
    // The body does not decode as the Content-Encoding it names (gzip, deflate, br).
    const detail = 'the body is not valid data of the Content-Encoding sent: send it compressed as named, or as is without the header';
    return new HttpProblem(400, 'Bad Request', `content-encoding: ${detail}.`, [{ field: 'content-encoding', pointer: '#/headers/content-encoding', detail }]);
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
 * The R4 issue type of an answer's status (https://hl7.org/fhir/R4/valueset-issue-type.html): a
 * temporary refusal (503, 504) is `transient`, so a FHIR client knows to try again; 429 `throttled`;
 * a precondition that failed (412) a `conflict` with the version the client holds; a media type
 * (415), like a method or a format (405, 406), `not-supported`; a request understood and refused
 * by a business rule (422) `processing`; anything else of ours `exception`.
 */
function issueTypeOf(status: number): string {
  switch (status) {
    case 400: return 'invalid';
    case 401: return 'login';
    case 403: return 'forbidden';
    case 404: return 'not-found';
    case 405: case 406: case 415: return 'not-supported';
    case 409: case 412: return 'conflict';
    case 413: return 'too-costly';
    case 422: return 'processing';
    case 429: return 'throttled';
    case 503: case 504: return 'transient';
    default: return 'exception';
  }
}

/**
 * FHIR R4 OperationOutcome for an error on a FHIR route
 * (https://hl7.org/fhir/R4/operationoutcome.html, issue types from {@link issueTypeOf}). Severity is
 * `error`, and `fatal` only for a 500 (something broke on our side): a 503 or 504 is temporary, the
 * request may succeed when sent again (https://hl7.org/fhir/R4/valueset-issue-severity.html).
 */
export function operationOutcome(problem: HttpProblem): OperationOutcome {
  const code = issueTypeOf(problem.status);
  const issues: OperationOutcome['issue'] =
    problem.errors.length > 0
      ? problem.errors.map((e) => ({ severity: 'error', code, diagnostics: e.detail, ...whereOf(e.field) }))
      : [{ severity: problem.status === 500 ? 'fatal' : 'error', code, diagnostics: problem.detail }];
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
