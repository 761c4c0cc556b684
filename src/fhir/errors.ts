/**
 * Typed errors of the outbound FHIR layer.
 *
 * Every error carries `retryable` (a later attempt, e.g. a re-queued job, may succeed) and
 * `permanent` (never retry: fix the request, the registration or the data). Messages are constant
 * phrases plus status codes and ids: no URLs with query strings, no bodies, no tokens, so they are
 * safe to pass to `errorFields()` and log.
 */
import type { LogMessage } from '../log';

export abstract class FhirClientError extends Error {
  abstract readonly retryable: boolean;
  /** Attempts made before giving up (1 when the error came from the first attempt). */
  attempts = 1;
  get permanent(): boolean {
    return !this.retryable;
  }
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * An HTTP response with an error status, with the OperationOutcome issue codes it carried.
 * https://hl7.org/fhir/R4/http.html#summary, https://hl7.org/fhir/R4/valueset-issue-type.html
 */
export class FhirHttpError extends FhirClientError {
  constructor(
    readonly status: number,
    readonly issueCodes: readonly string[],
    readonly retryable: boolean,
    readonly reason: string,
    /** Server-requested delay (RFC 9110 §10.2.3 Retry-After), when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(`FHIR server answered ${status} (${reason})`);
  }
}

/**
 * The server answered that the resource is not there: 404 Not Found, or 410 Gone for one deleted
 * (https://hl7.org/fhir/R4/http.html#read).
 */
export function isGoneError(err: unknown): boolean {
  return err instanceof FhirHttpError && (err.status === 404 || err.status === 410);
}

/** An error status that will not change on retry (4xx, permanent OperationOutcome codes). */
export class PermanentFhirError extends FhirHttpError {
  constructor(status: number, issueCodes: readonly string[], reason: string) {
    super(status, issueCodes, false, reason);
  }
}

/**
 * A 404 or 410 for a `next` link the client moved onto the endpoint's origin with its path kept
 * (`withProxyPathHint` in `fhir-client.ts`): a proxy that maps paths needs the EHR's own base to move
 * such links, and the EHR declares none, or the link was not under it. Its message keeps the server's
 * reason and names the link's origin, for the pull's record. Its log message is this service's words
 * alone: no server text (an OperationOutcome's diagnostics may quote what was asked for), no origin
 * (the log redacts it where it logs it as a field), and short enough to be logged whole.
 */
export class NextLinkPathError extends PermanentFhirError implements LogMessage {
  constructor(
    status: number,
    issueCodes: readonly string[],
    reason: string,
    /** The origin the link named (only the origin: a link's path and query may name the patient). */
    linkOrigin: string,
    /** The EHR declares a base of its own (its CapabilityStatement's implementation.url), which the link was not under. */
    readonly declaresBase: boolean,
  ) {
    const since = declaresBase
      ? 'it is not under the base the EHR declares for itself (its CapabilityStatement implementation.url)'
      : 'its CapabilityStatement declares no implementation.url';
    super(
      status,
      issueCodes,
      `${reason}; the next link named ${linkOrigin} and was followed on the endpoint's origin with its path unchanged, since ${since}: ` +
        "a proxy that maps paths needs the EHR's own base to move such links under the endpoint's base (refresh its capabilities: POST /api/endpoints/:id/capabilities)",
    );
  }

  get logMessage(): string {
    const codes = this.issueCodes.length > 0 ? ` (issue codes: ${this.issueCodes.join(', ')})` : '';
    const why = this.declaresBase ? 'is not under the base the EHR declares for itself' : 'could not be moved: the EHR declares no base of its own';
    return `FHIR server answered ${this.status}${codes} for a next link naming another origin, followed on the endpoint's origin with its path unchanged: the link ${why} (implementation.url), which a path-mapping proxy needs`;
  }
}

/** Connection reset, timeout, DNS failure, truncated body: the request may succeed later. */
export class FhirNetworkError extends FhirClientError {
  constructor(
    readonly reason: string,
    readonly code: string | undefined,
    readonly retryable: boolean,
    /** True when the request certainly never reached the server (connect failed): safe to resend a POST. */
    readonly beforeSend: boolean,
    options?: { cause?: unknown },
  ) {
    super(`FHIR request failed: ${reason}`, options);
  }
}

/** A 2xx body that is not the JSON we expected (truncated, not JSON, wrong resourceType). */
export class MalformedResponseError extends FhirClientError {
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(`FHIR response malformed: ${reason}`, options);
  }
}

/**
 * A URL (next page, attachment, redirect target) outside the endpoint's origin. Refused before
 * any byte is sent: SSRF guard, and our Authorization header never leaves the endpoint's origin.
 */
export class OffOriginUrlError extends FhirClientError {
  readonly retryable = false;
  constructor(
    /** Where the URL came from. */
    readonly context: 'next-page' | 'attachment' | 'redirect' | 'url',
    /** Origin (scheme://host:port) of the refused URL; never its path or query. */
    readonly candidateOrigin: string,
    readonly endpointOrigin: string,
  ) {
    super(
      `refused ${context} URL outside the endpoint origin` +
        (context === 'next-page' && candidateOrigin !== 'unparsable'
          ? ` (${candidateOrigin}; an EHR behind a proxy that names its internal address in its links: register the endpoint with rebaseNextLinks)`
          : ''),
    );
  }
}

/** An endpoint or token URL refused by the URL policy (scheme, credentials, address range). */
export class UrlRefusedError extends FhirClientError {
  readonly retryable = false;
  constructor(readonly reason: string) {
    super(`refused outbound URL: ${reason}`);
  }
}

/** An attachment larger than the caller's cap; nothing beyond the cap was read. */
export class AttachmentTooLargeError extends FhirClientError {
  readonly retryable = false;
  constructor(
    readonly maxBytes: number,
    /** The declared Content-Length, or the bytes counted when the stream crossed the cap. */
    readonly observedBytes: number,
    readonly declared: boolean,
  ) {
    super(
      declared
        ? `attachment declares ${observedBytes} bytes, over the ${maxBytes}-byte limit`
        : `attachment exceeded the ${maxBytes}-byte limit while streaming`,
    );
  }
}

/** A response body over the client's buffering cap (FHIR JSON, not attachments). */
export class ResponseTooLargeError extends FhirClientError {
  readonly retryable = false;
  constructor(readonly maxBytes: number) {
    super(`response body over the ${maxBytes}-byte limit`);
  }
}

/**
 * The client was closed because its endpoint's registration changed (an admin edited its limits,
 * auth or URL): the request was not sent, and says nothing about the endpoint's health. Ask the
 * endpoint clients for the current client and carry on (`EndpointClients.forEndpoint`).
 */
export class ClientRetiredError extends FhirClientError {
  readonly retryable = true;
  constructor(readonly endpointId: string) {
    super('the endpoint registration changed while this request waited: its client was replaced; ask again with the current one');
  }
}

/**
 * The caller withdrew the request before it was sent (its `stopBeforeSend` signal fired while it waited
 * for a limiter slot, a retry's backoff or its token): nothing reached the server, and it says nothing
 * about the endpoint's health. The pull and attachment workers' shutdown uses it to hand their jobs back.
 */
export class RequestNotSentError extends FhirClientError {
  readonly retryable = true;
  constructor(readonly endpointId: string) {
    super('the request was withdrawn before it was sent: its caller is stopping');
  }
}

/** The endpoint's circuit breaker is open: calls fail fast until `retryAt` (epoch ms). */
export class CircuitOpenError extends FhirClientError {
  readonly retryable = true;
  constructor(
    readonly endpointId: string,
    readonly retryAt: number,
    message = 'endpoint circuit open',
  ) {
    super(message);
  }
}

/**
 * The server answered 429/503 (or another retryable status) with a `Retry-After` longer than one
 * request may wait (RFC 9110 §10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after).
 * Nothing is sent to it before then: its circuit is held open until `retryAt` in every process, so a
 * job meeting this error, or the open circuit after it, waits as for a paused endpoint. `source` tells
 * which server asked: the FHIR server, or the endpoint's SMART token endpoint or its discovery (part of
 * the endpoint: https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token).
 */
export class ServerRetryAfterError extends CircuitOpenError {
  constructor(
    endpointId: string,
    retryAt: number,
    readonly status: number,
    /** The delay the server asked for (ms). */
    readonly retryAfterMs: number,
    readonly source: 'fhir-server' | 'token-endpoint' = 'fhir-server',
  ) {
    super(
      endpointId,
      retryAt,
      `${source === 'token-endpoint' ? 'SMART token endpoint' : 'FHIR server'} answered ${status} asking to wait ${Math.ceil(retryAfterMs / 1000)} s (Retry-After): no request to it before then`,
    );
  }
}

/**
 * The SMART token request failed. `oauthError` is the RFC 6749 §5.2 error code
 * (`invalid_client`, `invalid_scope`, ...) when the server sent one; `retryAfterMs` the delay a
 * retryable answer (429, 5xx) asked for with `Retry-After` (RFC 9110 §10.2.3,
 * https://www.rfc-editor.org/rfc/rfc9110#field.retry-after), honoured as the FHIR server's is.
 */
export class SmartAuthError extends FhirClientError {
  /** Server-requested delay (ms), when a retryable answer sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly reason: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly oauthError?: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(`SMART backend authorization failed: ${reason}`, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** True for any error of this layer that must not be retried (e.g. for BullMQ UnrecoverableError). */
export function isPermanentFhirError(err: unknown): boolean {
  return err instanceof FhirClientError && err.permanent;
}
