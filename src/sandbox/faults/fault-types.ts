/**
 * The faults a sandbox server can inject, and the rules that say when.
 *
 * A rule = a request pattern + an action + a trigger:
 * - pattern: `'<METHOD> <path>'` (see route-pattern.ts), e.g. `'GET /Observation*'`;
 * - action: one of {@link FaultAction};
 * - trigger: every matching request (default), only the `nth`, those `from`..`to` (1-based, inclusive),
 *   and/or with a `probability` drawn from a PRNG seeded by `seed` (or the server's seed), so a test
 *   run is always the same.
 */

/** `Retry-After` as delta-seconds (`Retry-After: 2`) or as an HTTP-date (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`). */
export type RetryAfterFormat = 'seconds' | 'http-date';

export type FaultAction =
  /** Wait `ms` before handling the request normally (adds to other latency rules and the global latency). */
  | { readonly kind: 'latency'; readonly ms: number }
  /**
   * Hold the request until the test releases the rule (`faults.release(id)`), then handle it normally
   * (with any other fault that fired): a request kept in flight for exactly as long as a test needs.
   * Released by `remove` and `clear` too; a request still held when the server stops is dropped.
   */
  | { readonly kind: 'hold' }
  /** 429 Too Many Requests with `Retry-After` (https://www.rfc-editor.org/rfc/rfc6585#section-4). */
  | { readonly kind: 'rate-limit'; readonly retryAfterSeconds?: number; readonly retryAfterFormat?: RetryAfterFormat }
  /** 503 Service Unavailable, optionally with `Retry-After`. */
  | { readonly kind: 'unavailable'; readonly retryAfterSeconds?: number; readonly retryAfterFormat?: RetryAfterFormat }
  /** 500 with an OperationOutcome body. */
  | { readonly kind: 'server-error'; readonly message?: string }
  /** 403 Forbidden with an OperationOutcome issue `forbidden` (default) or `security`: the server refuses this client the request. */
  | { readonly kind: 'forbidden'; readonly code?: 'forbidden' | 'security' }
  /** Never answer; the socket stays open until the client gives up or the server stops. */
  | { readonly kind: 'hang' }
  /** Destroy the connection (TCP RST) without answering. */
  | { readonly kind: 'reset' }
  /** 200 with a body that is not valid JSON (complete HTTP message, correct Content-Length). */
  | { readonly kind: 'malformed-json' }
  /** Send the headers (with the real Content-Length) and part of the body, then close the socket. */
  | { readonly kind: 'truncated'; readonly fraction?: number }
  /** 401 `invalid_token` "expired", whatever token was sent. */
  | { readonly kind: 'expired-token' }
  /**
   * Rewrite the `next` link of a searchset to another origin (for SSRF / origin-pinning tests); with
   * `base`, the server's base URL in it becomes `base` (a proxy that also maps the path).
   */
  | { readonly kind: 'foreign-next-link'; readonly origin: string; readonly base?: string }
  /**
   * Put an OperationOutcome entry (`search.mode = outcome`) first in a searchset answer: the hints and
   * warnings a server adds to search results (https://hl7.org/fhir/R4/search.html#errors), e.g.
   * "results truncated" or "parameter ignored". Severity default `warning`, code default `informational`.
   */
  | { readonly kind: 'search-outcome'; readonly message: string; readonly severity?: 'fatal' | 'error' | 'warning' | 'information'; readonly code?: string }
  /** Handle the request as if the search parameter `name` had not been sent (a server that does not support it and ignores it). */
  | { readonly kind: 'ignore-parameter'; readonly name: string }
  /**
   * Handle a create as if it were not conditional: the `If-None-Exist` header, and the `ifNoneExist` of
   * each entry of a batch or transaction Bundle, are dropped before the request is handled. A server
   * that does not evaluate the condition (https://hl7.org/fhir/R4/http.html#ccreate) creates every
   * time, so a client that resends a create, or writes what it failed to find, makes a second copy.
   */
  | { readonly kind: 'ignore-if-none-exist' }
  /** A searchset page whose `next` link is its own `self` link: paging that goes round in a circle. */
  | { readonly kind: 'paging-loop' }
  /** A searchset page holding the first page's entries, its links those of the page asked for: paging that never advances (a server ignoring its own offset). */
  | { readonly kind: 'stuck-paging' }
  /** A searchset page that ends the results still carries a `next` link, to the page after it (empty), and so on: paging that never ends. */
  | { readonly kind: 'endless-paging' }
  /** Answer with a redirect to `location` (default 302). */
  | { readonly kind: 'redirect'; readonly location: string; readonly status?: 301 | 302 | 303 | 307 | 308 };

export type FaultKind = FaultAction['kind'];

export interface FaultRuleInput {
  /** `'<METHOD> <path pattern>'`; METHOD may be `*`. See route-pattern.ts. */
  readonly match: string;
  readonly action: FaultAction;
  /** Fire only on the nth matching request (1-based). */
  readonly nth?: number;
  /** Fire on matching requests number `from` (1-based) … */
  readonly from?: number;
  /** … to `to` (inclusive; open-ended when omitted). */
  readonly to?: number;
  /** Fire with this probability (0..1), drawn from a seeded PRNG. */
  readonly probability?: number;
  /** Seed for `probability`; defaults to the server's seed combined with the rule's position. */
  readonly seed?: number;
  /** A label for logs and the CLI. */
  readonly name?: string;
}

/** Faults that replace the response before the request is handled. */
export const PRE_RESPONSE_KINDS: ReadonlySet<FaultKind> = new Set([
  'rate-limit',
  'unavailable',
  'server-error',
  'forbidden',
  'hang',
  'reset',
  'expired-token',
  'redirect',
]);
