import { fullJitterDelay } from './backoff';
import { CircuitOpenError, FhirNetworkError, MalformedResponseError, SmartAuthError } from './errors';
import { toFhirClientError } from './network-errors';
import { classifyIssueCodes, parseIssueCodes } from './operation-outcome';
import { parseRetryAfter } from './retry-after';

/**
 * Retry decisions for one outbound FHIR request, attempt by attempt.
 *
 * Rules (https://hl7.org/fhir/R4/http.html, RFC 9110 §15 and §10.2.3):
 * - 2xx: ok.
 * - 429, 503, 502, 504, 408: retry. `Retry-After` (seconds or HTTP-date) is honoured exactly
 *   up to `maxRetryAfterMs`; beyond it the request is not retried in-request but deferred (`defer`:
 *   the caller sends nothing to the server before that time); without it, capped exponential
 *   backoff with full jitter.
 * - 500 (and other 5xx except 501/505): retry when the OperationOutcome says `transient`,
 *   `throttled`, `timeout` or `lock-error`; when it says `exception`/`incomplete`/`no-store`, or the
 *   body is no OperationOutcome, retry only up to `maxUncertainAttempts`; any permanent code
 *   (`not-found`, `invalid` and its children, `not-supported`, `forbidden`, `security`, ...) fails
 *   at once.
 * - Other 4xx, 501, 505, 3xx: fail, permanent. (401 is refreshed once by the client before it
 *   gets here.)
 * - Network errors (reset, hang up, timeouts, truncated or non-JSON body): retry.
 * - A retryable SMART token failure (the token endpoint answered 429/5xx,
 *   https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token): retry,
 *   with its `Retry-After` honoured (or deferred) as the FHIR server's is; a refusal fails, permanent.
 * - Non-idempotent requests (a transaction not declared idempotent) are resent only when the
 *   server certainly did not process them: 429, 503, a failed connect, or a token that could not be
 *   had (the request was never sent).
 * - After `maxAttempts`, a retryable failure becomes `fail` with `permanent: false` (a later job
 *   may succeed); a non-retryable one is `permanent: true`. One whose last answer named a
 *   `Retry-After` (above 0) is deferred instead (`defer`, `attemptsExhausted`): the server said when
 *   it may be asked again, and a job's own backoff (seconds) would ask it sooner.
 */
export type RetryDecision =
  | { readonly kind: 'ok' }
  /** Try again after `delayMs`: the server's `Retry-After` (`serverNamed`), else a backoff. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly reason: string; readonly serverNamed?: true }
  /**
   * The server's Retry-After exceeds what a request may wait, or the attempts ran out on an answer
   * that carried one (`attemptsExhausted`: a failure of the request, as `fail` is): come back after
   * `delayMs`, not sooner.
   */
  | { readonly kind: 'defer'; readonly delayMs: number; readonly reason: string; readonly attemptsExhausted: boolean }
  | { readonly kind: 'fail'; readonly reason: string; readonly permanent: boolean };

/** What one attempt produced. */
export type AttemptResult =
  | {
      readonly type: 'response';
      readonly status: number;
      readonly headers: Readonly<Record<string, string | string[] | undefined>>;
      /** Error body (decoded), for OperationOutcome codes. */
      readonly body?: Buffer;
      /** Issue codes already parsed by the caller (saves a second parse). */
      readonly issueCodes?: readonly string[];
    }
  | { readonly type: 'error'; readonly error: unknown };

export interface RetryPolicyOptions {
  /** Attempts in total, first included. Default 5. */
  readonly maxAttempts: number;
  /** Attempts in total for uncertain failures (500 without a transient code). Default 3. */
  readonly maxUncertainAttempts: number;
  /** Backoff ceiling of the first retry. Default 500 ms. */
  readonly baseDelayMs: number;
  /** Backoff cap. Default 30 s. */
  readonly maxDelayMs: number;
  /** Longest Retry-After waited for in-request; a longer one is deferred. Default 120 s. */
  readonly maxRetryAfterMs: number;
  /** Uniform [0,1) source for jitter. Default Math.random. */
  readonly random: () => number;
  /** Clock for HTTP-date Retry-After. Default Date.now. */
  readonly now: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicyOptions = {
  maxAttempts: 5,
  maxUncertainAttempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
  random: Math.random,
  now: Date.now,
};

/** Request facts that change the decision. */
export interface RequestTraits {
  /** False for a POST whose repetition could apply it twice (a plain transaction). Default true. */
  readonly idempotent?: boolean;
  /** Overrides `maxAttempts` for this request (1 for a circuit-breaker probe). */
  readonly maxAttempts?: number;
}

const ALWAYS_RETRY_STATUSES = new Set([408, 429, 502, 503, 504]);
/** Statuses that prove the server did not process the request. */
const NOT_PROCESSED_STATUSES = new Set([429, 503]);

export class RetryPolicy {
  readonly options: RetryPolicyOptions;

  constructor(options: Partial<RetryPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RETRY_POLICY, ...options };
  }

  /**
   * Decides what to do after `attempt` (1-based) produced `result`.
   */
  decide(result: AttemptResult, attempt: number, traits: RequestTraits = {}): RetryDecision {
    const verdict = result.type === 'response' ? this.judgeResponse(result, traits) : this.judgeError(result.error, traits);
    if (verdict.kind !== 'retryable') return verdict;
    if (verdict.retryAfterMs !== undefined && verdict.retryAfterMs > this.options.maxRetryAfterMs) {
      // RFC 9110 §10.2.3: the server says when to come back; sooner only draws more refusals.
      return { kind: 'defer', delayMs: verdict.retryAfterMs, reason: `${verdict.reason}; Retry-After beyond the in-request limit`, attemptsExhausted: false };
    }
    const maxAttempts = traits.maxAttempts ?? this.options.maxAttempts;
    const limit = verdict.uncertain ? Math.min(this.options.maxUncertainAttempts, maxAttempts) : maxAttempts;
    if (attempt >= limit) {
      // The last answer still named a time to come back (RFC 9110 §10.2.3): whoever asks next waits for it.
      if (verdict.retryAfterMs !== undefined && verdict.retryAfterMs > 0) {
        return { kind: 'defer', delayMs: verdict.retryAfterMs, reason: `${verdict.reason}; attempts exhausted`, attemptsExhausted: true };
      }
      return { kind: 'fail', reason: `${verdict.reason}; attempts exhausted`, permanent: false };
    }
    if (verdict.retryAfterMs !== undefined) return { kind: 'retry', delayMs: verdict.retryAfterMs, reason: verdict.reason, serverNamed: true };
    return { kind: 'retry', delayMs: fullJitterDelay(attempt, this.options), reason: verdict.reason };
  }

  private judgeResponse(result: Extract<AttemptResult, { type: 'response' }>, traits: RequestTraits): Verdict {
    const { status } = result;
    if (status >= 200 && status < 300) return { kind: 'ok' };
    const idempotent = traits.idempotent !== false;
    const retryAfterMs = parseRetryAfter(result.headers['retry-after'], this.options.now(), result.headers.date);
    const reason = `http-${status}`;
    if (ALWAYS_RETRY_STATUSES.has(status)) {
      if (!idempotent && !NOT_PROCESSED_STATUSES.has(status)) return fail(`${reason}; not idempotent`, false);
      return { kind: 'retryable', reason, retryAfterMs, uncertain: false };
    }
    if (status >= 500 && status !== 501 && status !== 505) {
      if (!idempotent) return fail(`${reason}; not idempotent`, false);
      const codes = result.issueCodes ?? parseIssueCodes(result.body);
      if (codes === undefined) return { kind: 'retryable', reason: `${reason}; no OperationOutcome`, retryAfterMs, uncertain: true };
      const codeClass = classifyIssueCodes(codes);
      const codeReason = `${reason}; ${codes.join(',') || 'no issue code'}`;
      if (codeClass === 'transient') return { kind: 'retryable', reason: codeReason, retryAfterMs, uncertain: false };
      if (codeClass === 'weak-transient') return { kind: 'retryable', reason: codeReason, retryAfterMs, uncertain: true };
      return fail(codeReason, true);
    }
    return fail(reason, true);
  }

  private judgeError(error: unknown, traits: RequestTraits): Verdict {
    if (error instanceof CircuitOpenError) return fail('circuit open', false);
    const typed = toFhirClientError(error);
    const reason = typed instanceof FhirNetworkError ? `network: ${typed.reason}` : typed instanceof MalformedResponseError ? `malformed: ${typed.reason}` : typed.name;
    if (!typed.retryable) return fail(reason, true);
    const idempotent = traits.idempotent !== false;
    // A failed connect, or a token that could not be had (the request itself was never sent): safe to send.
    const neverSent = (typed instanceof FhirNetworkError && typed.beforeSend) || typed instanceof SmartAuthError;
    if (!idempotent && !neverSent) return fail(`${reason}; not idempotent`, false);
    // The token endpoint is part of the endpoint: its Retry-After binds us as the FHIR server's does.
    const retryAfterMs = typed instanceof SmartAuthError ? typed.retryAfterMs : undefined;
    return { kind: 'retryable', reason, retryAfterMs, uncertain: false };
  }
}

type Verdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'fail'; readonly reason: string; readonly permanent: boolean }
  | { readonly kind: 'retryable'; readonly reason: string; readonly retryAfterMs: number | undefined; readonly uncertain: boolean };

function fail(reason: string, permanent: boolean): Verdict {
  return { kind: 'fail', reason, permanent };
}
