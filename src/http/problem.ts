import type { z } from 'zod';

/** One field-level problem, as an RFC 9457 extension member. */
export interface FieldProblem {
  /** Dotted path of the field, e.g. `patient.birthDate`. */
  readonly field: string;
  /** JSON Pointer (RFC 6901) into the request body, e.g. `#/patient/birthDate`. */
  readonly pointer: string;
  readonly detail: string;
}

/**
 * An error that becomes an `application/problem+json` answer (RFC 9457,
 * https://www.rfc-editor.org/rfc/rfc9457) or, on FHIR routes, an OperationOutcome.
 */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: readonly FieldProblem[] = [],
    readonly extensions: Readonly<Record<string, unknown>> = {},
    /** Response headers the answer carries (`Retry-After` of a 503). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

/** Seconds a client is asked to wait (`Retry-After`) after a temporary DNS failure checking a URL it sent. */
const DNS_RETRY_AFTER_SECONDS = 10;

/**
 * 503 with `Retry-After` naming `field`: a URL the request carries could not be checked right now
 * (its host name's lookup failed temporarily: EAI_AGAIN, a timeout). Nothing was kept; the same
 * request may succeed in a moment. Not a 400: nothing is wrong with what was sent.
 */
export function urlCheckUnavailable(field: string): HttpProblem {
  const detail = `its host name could not be looked up right now (a temporary DNS failure): nothing was kept; send the request again in ${DNS_RETRY_AFTER_SECONDS} s`;
  return new HttpProblem(503, 'Service Unavailable', `${field}: ${detail}.`, [{ field, pointer: `#/${field}`, detail }], { retryAfter: DNS_RETRY_AFTER_SECONDS }, { 'Retry-After': String(DNS_RETRY_AFTER_SECONDS) });
}

export const notFound = (what: string): HttpProblem => new HttpProblem(404, 'Not Found', `${what} was not found.`);
export const conflict = (detail: string, extensions: Record<string, unknown> = {}): HttpProblem =>
  new HttpProblem(409, 'Conflict', detail, [], extensions);

function fieldOf(path: readonly PropertyKey[]): FieldProblem['field'] {
  return path.length === 0 ? '(body)' : path.map(String).join('.');
}

/** The problem of the field at `path`; `where` prefixes the path (`query`, `params`) when not the body. */
export function fieldProblem(path: readonly PropertyKey[], detail: string, where?: string): FieldProblem {
  const full = where ? [where, ...path] : path;
  return {
    field: fieldOf(full),
    pointer: `#/${full.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`,
    detail,
  };
}

/**
 * Turns zod issues into field problems; `where` prefixes the path (`query`, `params`) when not the body.
 * An `unrecognized_keys` issue (a strict object given members it does not know) is located at the
 * object holding them, which would name `(body)` / `#/` for every unknown member of the body: it
 * becomes one problem per key instead, at the key itself (`field` `reason2`, `pointer` `#/reason2`),
 * so a client sees which member to drop.
 * @see https://www.rfc-editor.org/rfc/rfc9457#section-3 (extension members)
 * @see https://www.rfc-editor.org/rfc/rfc6901 (the pointer)
 */
export function fieldProblems(error: z.ZodError, where?: string): FieldProblem[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => fieldProblem([...issue.path, key], `"${key}" is not a member this request takes; leave it out`, where))
      : [fieldProblem(issue.path, issue.message, where)],
  );
}

export function validationProblem(error: z.ZodError, where?: string): HttpProblem {
  const errors = fieldProblems(error, where);
  const detail = errors.map((e) => `${e.field}: ${e.detail}`).join('; ');
  return new HttpProblem(400, 'Invalid request', detail, errors);
}
