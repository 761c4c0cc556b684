/**
 * Format negotiation on the FHIR routes: this service speaks FHIR JSON only. A client that asks for
 * another format — `Accept` without any JSON type, or `_format` naming XML or Turtle — gets 406 with
 * an OperationOutcome (in JSON, the one format there is) instead of JSON it did not ask for.
 * `_format` wins over `Accept`, as the FHIR HTTP rules have it.
 * @see https://hl7.org/fhir/R4/http.html#mime-type
 * @see https://hl7.org/fhir/R4/http.html#parameters
 */
import type { NextFunction, Request, Response } from 'express';
import { HttpProblem } from './problem';

/** `_format` values that mean FHIR JSON (R4 http.html: json, the MIME types). */
const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

const NOT_ACCEPTABLE = (asked: string): HttpProblem =>
  new HttpProblem(406, 'Not Acceptable', `This FHIR route answers application/fhir+json only; ${asked} cannot be served.`);

/** Refuses (406) a FHIR request that accepts no JSON. */
export function fhirFormat(req: Request, _res: Response, next: NextFunction): void {
  const format = req.query['_format'];
  if (typeof format === 'string' && format !== '') {
    // `+` in a query string is a space: `application/fhir json` is `application/fhir+json`.
    const asked = format.trim().toLowerCase().replace(/ /g, '+').split(';')[0] ?? '';
    next(JSON_FORMATS.has(asked) ? undefined : NOT_ACCEPTABLE(`_format=${format.slice(0, 100)}`));
    return;
  }
  if (req.headers.accept && !req.accepts(['application/fhir+json', 'application/json'])) {
    next(NOT_ACCEPTABLE(`Accept: ${req.headers.accept.slice(0, 200)}`));
    return;
  }
  next();
}
