import type { Response } from 'express';

/**
 * Sets response headers, `Vary` merged rather than replaced: the request fields an answer varies on
 * add up — `Accept` (a FHIR route's 200 or 406, set by `fhirFormat`), `Accept-Encoding` (gzip or
 * not) — and a cache keyed on fewer than all of them could serve one client's answer to another.
 * Each field is listed once (Express's `res.vary`).
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-12.5.5 (Vary)
 */
export function setResponseHeaders(res: Response, headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'vary') res.vary(value);
    else res.setHeader(name, value);
  }
}
