/**
 * The service speaks FHIR R4 only. A server's CapabilityStatement says which FHIR version it implements
 * (`CapabilityStatement.fhirVersion`, https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.fhirVersion;
 * R4 is `4.0.0` / `4.0.1`, https://hl7.org/fhir/R4/valueset-FHIR-version.html). A server declaring
 * another (DSTU2 `1.0.2`, STU3 `3.0.2`, R4B `4.3.0`, R5 `5.0.0`) is refused by name rather than
 * searched with R4 queries that fail in confusing ways. A statement without the element is taken
 * as R4, as before (the element is required in R4, but older and lenient servers omit it).
 * @packageDocumentation
 */
import { FhirClientError } from '../fhir';
import type { AuthStrategy } from '../fhir/auth-strategy';
import type { LogMessage } from '../log';
import { HttpProblem } from '../http/problem';

/** The FHIR versions spoken here, as said to people. */
export const SUPPORTED_FHIR_VERSION = '4.0.x (R4)';

/** `4.0`, `4.0.0`, `4.0.1`: FHIR R4 (its technical corrections keep `4.0.`). */
const R4 = /^4\.0(?:\.\d+)?$/;

/**
 * The version a server declares when it is not R4; undefined for R4 or a statement that declares none.
 * @param capabilities what was kept of its CapabilityStatement (`EndpointCapabilities`), or anything stored
 */
export function unsupportedFhirVersion(capabilities: unknown): string | undefined {
  if (typeof capabilities !== 'object' || capabilities === null) return undefined;
  const declared = (capabilities as { fhirVersion?: unknown }).fhirVersion;
  if (typeof declared !== 'string' || declared.trim() === '') return undefined;
  return R4.test(declared.trim()) ? undefined : declared;
}

/** What to say about a server declaring `declared`: names the element and the version. */
export function fhirVersionMessage(declared: string): string {
  return `the server declares fhirVersion ${declared} in its CapabilityStatement; this service speaks FHIR ${SUPPORTED_FHIR_VERSION} only: register the server's R4 base URL`;
}

/**
 * Every request to an endpoint whose server declares another FHIR version: refused before it is sent,
 * permanent (the job is not retried; asking again gets the same), not counted against the endpoint's
 * health. Read its capabilities again (`POST /api/endpoints/:id/capabilities`) once it speaks R4.
 */
export class UnsupportedFhirVersionError extends FhirClientError implements LogMessage {
  readonly retryable = false;
  constructor(readonly declared: string) {
    super(fhirVersionMessage(declared));
  }

  /** The message, logged whole (`LogMessage`, src/log.ts); what the server declared only when it is a version number, as FHIR's are. */
  get logMessage(): string {
    return fhirVersionMessage(VERSION_NUMBER.test(this.declared) ? this.declared : '(not a version number)');
  }
}

/** A version as the FHIR-version value set writes them (`1.0.2`, `5.0.0`, `6.0.0-ballot2`). */
const VERSION_NUMBER = /^\d{1,2}\.\d{1,2}(?:\.\d{1,2})?(?:-[a-z0-9]{1,12})?$/;

/**
 * The 422 answer of an endpoint route whose server declares another FHIR version: a problem naming
 * the element (`field: fhirVersion`) and the version declared (`fhirVersion`).
 * @param outcome what became of the request (not registered, not changed, recorded…)
 */
export function fhirVersionProblem(declared: string, outcome: string): HttpProblem {
  const message = fhirVersionMessage(declared);
  return new HttpProblem(422, 'Unsupported FHIR version', `${message.charAt(0).toUpperCase()}${message.slice(1)}. ${outcome}`, [], {
    field: 'fhirVersion',
    fhirVersion: declared,
    supportedFhirVersion: SUPPORTED_FHIR_VERSION,
  });
}

/**
 * The auth strategy of the client of an endpoint whose server declares another FHIR version: every
 * request is refused with {@link UnsupportedFhirVersionError} at the point the client asks for its
 * credentials, after the circuit breaker and limiter and before anything is sent, so pulls, document
 * downloads and deliveries fail at once, permanently, naming the version. No token is asked for.
 */
export function refusingAuth(declared: string): AuthStrategy {
  return {
    authorization: () => Promise.reject(new UnsupportedFhirVersionError(declared)),
    invalidate: () => Promise.resolve(false),
    grantedScope: () => Promise.reject(new UnsupportedFhirVersionError(declared)),
  };
}
