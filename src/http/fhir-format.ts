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

/** Media types of FHIR JSON, and the ranges that take them. */
const JSON_MEDIA = new Set(['application/fhir+json', 'application/json', 'application/json+fhir', 'application/*', '*/*']);

/** `fhirVersion` values meaning R4 (http.html#version-parameter: major.minor, or the full version). */
const R4_VERSIONS = new Set(['4.0', '4.0.1']);

/**
 * Whether an `Accept` header takes FHIR R4 JSON. Each media range is read with its parameters: a
 * `charset` is no reason to refuse (JSON is UTF-8), `q=0` excludes the range, and a `fhirVersion`
 * other than R4's excludes it (https://hl7.org/fhir/R4/http.html#version-parameter). Express's
 * `req.accepts` matched a range only when its parameters matched too, so `application/fhir+json;
 * charset=utf-8` or `; fhirVersion=4.0` was refused (406).
 */
export function acceptsFhirJson(accept: string): boolean {
  for (const range of accept.split(',')) {
    const [mediaPart = '', ...paramParts] = range.split(';');
    const media = mediaPart.trim().toLowerCase();
    if (!JSON_MEDIA.has(media)) continue;
    let ok = true;
    for (const part of paramParts) {
      const eq = part.indexOf('=');
      const name = part.slice(0, eq < 0 ? undefined : eq).trim().toLowerCase();
      const value = eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (name === 'q' && !(Number(value) > 0)) ok = false;
      if (name === 'fhirversion' && !R4_VERSIONS.has(value)) ok = false;
    }
    if (ok) return true;
  }
  return false;
}

/** Refuses (406) a FHIR request that accepts no JSON. */
export function fhirFormat(req: Request, _res: Response, next: NextFunction): void {
  const format = req.query['_format'];
  if (typeof format === 'string' && format !== '') {
    // `+` in a query string is a space: `application/fhir json` is `application/fhir+json`.
    const asked = format.trim().toLowerCase().replace(/ /g, '+').split(';')[0] ?? '';
    next(JSON_FORMATS.has(asked) ? undefined : NOT_ACCEPTABLE(`_format=${format.slice(0, 100)}`));
    return;
  }
  if (req.headers.accept && !acceptsFhirJson(req.headers.accept)) {
    next(NOT_ACCEPTABLE(`Accept: ${req.headers.accept.slice(0, 200)}`));
    return;
  }
  next();
}
