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
 * Whether the parameters of one media type (`name=value` parts after its `;`) leave it FHIR R4 JSON:
 * a `charset` is no reason to refuse (JSON is UTF-8), `q=0` excludes it (in `Accept`), and a
 * `fhirVersion` other than R4's excludes it (https://hl7.org/fhir/R4/http.html#version-parameter).
 */
function parametersAllowR4Json(paramParts: readonly string[]): boolean {
  for (const part of paramParts) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq < 0 ? undefined : eq).trim().toLowerCase();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (name === 'q' && !(Number(value) > 0)) return false;
    if (name === 'fhirversion' && !R4_VERSIONS.has(value)) return false;
  }
  return true;
}

/**
 * Whether an `Accept` header takes FHIR R4 JSON. Each media range is read with its parameters
 * ({@link parametersAllowR4Json}). Express's `req.accepts` matched a range only when its parameters
 * matched too, so `application/fhir+json; charset=utf-8` or `; fhirVersion=4.0` was refused (406).
 */
export function acceptsFhirJson(accept: string): boolean {
  return accept.split(',').some((range) => {
    const [mediaPart = '', ...paramParts] = range.split(';');
    return JSON_MEDIA.has(mediaPart.trim().toLowerCase()) && parametersAllowR4Json(paramParts);
  });
}

/**
 * Whether one `_format` value names FHIR R4 JSON: `json` or a JSON MIME type, with the same
 * parameter rules as `Accept` (`application/fhir+json; fhirVersion=3.0` names another version).
 * `+` in a query string is a space, so `application/fhir json` is `application/fhir+json`.
 * @see https://hl7.org/fhir/R4/http.html#parameters
 */
export function formatIsFhirJson(format: string): boolean {
  const [mediaPart = '', ...paramParts] = format.split(';');
  return JSON_FORMATS.has(mediaPart.trim().toLowerCase().replace(/ /g, '+')) && parametersAllowR4Json(paramParts);
}

/**
 * Refuses (406) a FHIR request that accepts no JSON. `_format` wins over `Accept`; sent more than
 * once (`?_format=xml&_format=xml`, which the query parser gives as a list), every value must name
 * FHIR JSON: a list is not a reason to fall back to `Accept` and serve JSON to a client that asked
 * for XML.
 */
export function fhirFormat(req: Request, res: Response, next: NextFunction): void {
  // The answer (200 or 406) depends on Accept: caches must key on it.
  res.vary('Accept');
  const raw = req.query['_format'];
  const formats = (Array.isArray(raw) ? raw : [raw]).filter((f): f is string => typeof f === 'string' && f !== '');
  if (formats.length > 0) {
    const refused = formats.find((format) => !formatIsFhirJson(format));
    next(refused === undefined ? undefined : NOT_ACCEPTABLE(`_format=${refused.slice(0, 100)}`));
    return;
  }
  if (req.headers.accept && !acceptsFhirJson(req.headers.accept)) {
    next(NOT_ACCEPTABLE(`Accept: ${req.headers.accept.slice(0, 200)}`));
    return;
  }
  next();
}
