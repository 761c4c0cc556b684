/**
 * A response fully built in memory before it is written (one buffer or string), so that faults can
 * alter it (cut it short, break its JSON, rewrite its links) and so it is written in one call.
 */
import type { OperationOutcome } from '@medplum/fhirtypes';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export interface SandboxResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** A FHIR JSON response from an already serialized body. */
export function fhirJsonResponse(status: number, json: string | Buffer, headers: Record<string, string> = {}): SandboxResponse {
  return { status, headers: { 'content-type': FHIR_JSON, ...headers }, body: json };
}

/** An OperationOutcome response (https://hl7.org/fhir/R4/operationoutcome.html). */
export function outcomeResponse(status: number, outcome: OperationOutcome, headers: Record<string, string> = {}): SandboxResponse {
  return fhirJsonResponse(status, JSON.stringify(outcome), headers);
}

/** An OperationOutcome with one issue. */
export function simpleOutcome(
  severity: 'error' | 'warning' | 'information' | 'fatal',
  code: string,
  text: string
): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity, code: code as 'processing', details: { text } }],
  };
}

/** A plain JSON response (OAuth endpoints, SMART configuration). */
export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): SandboxResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(value) };
}
