import { fullJitterDelay, seededRandom } from '../../src/fhir/backoff';
import { FhirNetworkError, MalformedResponseError, OffOriginUrlError, SmartAuthError } from '../../src/fhir/errors';
import { parseRetryAfter } from '../../src/fhir/retry-after';
import { RetryPolicy, type AttemptResult } from '../../src/fhir/retry-policy';

const NOW = Date.parse('2025-03-01T12:00:00Z');

function response(status: number, body?: unknown, headers: Record<string, string> = {}): AttemptResult {
  return { type: 'response', status, headers, body: body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}
const outcome = (...codes: string[]) => ({ resourceType: 'OperationOutcome', issue: codes.map((code) => ({ severity: 'error', code })) });
const policy = (extra: ConstructorParameters<typeof RetryPolicy>[0] = {}) =>
  new RetryPolicy({ random: () => 0.5, now: () => NOW, baseDelayMs: 100, maxDelayMs: 1000, ...extra });

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('7', NOW)).toBe(7000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
    expect(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Saturday, 01-Mar-25 12:00:30 GMT', NOW)).toBe(30_000); // obsolete RFC 850 form
    expect(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', NOW)).toBe(0); // in the past
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });

  it('reads the asctime form of an HTTP-date too, as GMT (RFC 9110 §5.6.7: a recipient MUST accept all three forms)', () => {
    expect(parseRetryAfter('Sat Mar  1 12:00:30 2025', NOW)).toBe(30_000); // one-digit day, space-padded
    expect(parseRetryAfter('Sat Mar 01 12:02:00 2025', NOW)).toBe(120_000);
    // Measured from a Date header in the same form (the server's clock), as for the other forms.
    expect(parseRetryAfter('Sat Mar  1 12:00:45 2025', NOW, 'Sat Mar  1 12:00:40 2025')).toBe(5_000);
    expect(parseRetryAfter('Sat, 01 Mar 2025 12:00:45 GMT', NOW, 'Sat Mar  1 12:00:40 2025')).toBe(5_000);
    // The policy honours it instead of retrying after its own, shorter backoff.
    expect(policy().decide(response(503, undefined, { 'retry-after': 'Sat Mar  1 12:00:45 2025' }), 1)).toEqual({ kind: 'retry', delayMs: 45_000, reason: 'http-503', serverNamed: true });
    // Not a date: an impossible time, or the asctime shape with a zone tacked on.
    expect(parseRetryAfter('Sat Mar  1 25:00:00 2025', NOW)).toBeUndefined();
    expect(parseRetryAfter('Sat Mar 1 12:00:30 2025 +0100', NOW)).toBeUndefined();
  });

  it('is honoured exactly for 429 and 503 up to the in-request limit', () => {
    expect(policy().decide(response(429, undefined, { 'retry-after': '3' }), 1)).toEqual({ kind: 'retry', delayMs: 3000, reason: 'http-429', serverNamed: true });
    expect(policy().decide(response(503, undefined, { 'retry-after': 'Sat, 01 Mar 2025 12:00:45 GMT' }), 1)).toEqual({
      kind: 'retry',
      delayMs: 45_000,
      reason: 'http-503',
      serverNamed: true,
    });
    expect(policy().decide(response(429, undefined, { 'retry-after': '120' }), 1)).toMatchObject({ kind: 'retry', delayMs: 120_000 });
    // A backoff of its own is not the server's word (serverNamed: only a Retry-After holds the endpoint).
    expect(policy().decide(response(503), 1)).not.toHaveProperty('serverNamed');
  });

  it('defers, instead of retrying sooner than asked, a Retry-After beyond the in-request limit (even on the last attempt)', () => {
    expect(policy().decide(response(429, undefined, { 'retry-after': '3600' }), 1)).toEqual({
      kind: 'defer',
      delayMs: 3_600_000,
      reason: 'http-429; Retry-After beyond the in-request limit',
      attemptsExhausted: false,
    });
    expect(policy({ maxRetryAfterMs: 5000 }).decide(response(503, undefined, { 'retry-after': '60' }), 5)).toMatchObject({ kind: 'defer', delayMs: 60_000 });
  });

  it('defers, instead of failing into a job backoff shorter than asked, the last attempt of an answer naming a Retry-After', () => {
    const p = policy({ maxAttempts: 5 });
    expect(p.decide(response(429, undefined, { 'retry-after': '60' }), 4)).toEqual({ kind: 'retry', delayMs: 60_000, reason: 'http-429', serverNamed: true });
    expect(p.decide(response(429, undefined, { 'retry-after': '60' }), 5)).toEqual({
      kind: 'defer',
      delayMs: 60_000,
      reason: 'http-429; attempts exhausted',
      attemptsExhausted: true,
    });
    // An HTTP-date, a 503, a probe's single attempt, an uncertain 500 at its own limit: the same.
    expect(p.decide(response(503, undefined, { 'retry-after': 'Sat, 01 Mar 2025 12:00:45 GMT' }), 5)).toMatchObject({ kind: 'defer', delayMs: 45_000, attemptsExhausted: true });
    expect(p.decide(response(429, undefined, { 'retry-after': '2' }), 1, { maxAttempts: 1 })).toMatchObject({ kind: 'defer', delayMs: 2000, attemptsExhausted: true });
    expect(p.decide(response(500, 'oops', { 'retry-after': '10' }), 3)).toMatchObject({ kind: 'defer', delayMs: 10_000, attemptsExhausted: true });
    // A token endpoint's Retry-After binds as the FHIR server's does.
    const token = new SmartAuthError('token endpoint busy', true, 503, undefined, { retryAfterMs: 7000 });
    expect(p.decide({ type: 'error', error: token }, 5)).toMatchObject({ kind: 'defer', delayMs: 7000, attemptsExhausted: true });
    // No time named (or "now"): nothing to wait for, the request fails as before.
    expect(p.decide(response(429), 5)).toEqual({ kind: 'fail', reason: 'http-429; attempts exhausted', permanent: false });
    expect(p.decide(response(429, undefined, { 'retry-after': '0' }), 5)).toEqual({ kind: 'fail', reason: 'http-429; attempts exhausted', permanent: false });
  });
});

describe('backoff', () => {
  it('is capped exponential with full jitter from the injected random source', () => {
    const p = policy({ random: () => 0.999 });
    const delays = [1, 2, 3, 4].map((attempt) => (p.decide(response(502), attempt) as { delayMs: number }).delayMs);
    expect(delays).toEqual([99, 199, 399, 799]);
    expect(fullJitterDelay(10, { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 })).toBe(999);
    expect(fullJitterDelay(3, { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 })).toBe(0);
  });

  it('is reproducible with a seeded random source', () => {
    const run = () => {
      const p = policy({ random: seededRandom(42) });
      return [1, 2, 3, 4].map((a) => (p.decide(response(504), a) as { delayMs: number }).delayMs);
    };
    expect(run()).toEqual(run());
    const values = run();
    values.forEach((d, i) => expect(d).toBeLessThan(100 * 2 ** i));
  });

  it('gives up after maxAttempts, as a non-permanent failure', () => {
    const p = policy({ maxAttempts: 3 });
    expect(p.decide(response(503), 2).kind).toBe('retry');
    expect(p.decide(response(503), 3)).toEqual({ kind: 'fail', reason: 'http-503; attempts exhausted', permanent: false });
  });
});

describe('statuses and OperationOutcome codes (https://hl7.org/fhir/R4/valueset-issue-type.html)', () => {
  it.each([200, 201, 204])('%i is ok', (status) => expect(policy().decide(response(status), 1)).toEqual({ kind: 'ok' }));

  it.each([429, 503, 502, 504, 408])('%i is retried', (status) => expect(policy().decide(response(status), 1).kind).toBe('retry'));

  it.each(['transient', 'throttled', 'timeout', 'lock-error'])('500 with %s is retried up to maxAttempts', (code) => {
    const p = policy({ maxAttempts: 5, maxUncertainAttempts: 2 });
    expect(p.decide(response(500, outcome(code)), 1)).toMatchObject({ kind: 'retry', reason: `http-500; ${code}` });
    expect(p.decide(response(500, outcome(code)), 4).kind).toBe('retry');
    expect(p.decide(response(500, outcome(code)), 5)).toMatchObject({ kind: 'fail', permanent: false });
  });

  it.each([
    ['no body', undefined],
    ['HTML error page', '<html>Internal error</html>'],
    ['truncated JSON', '{"resourceType":"OperationOut'],
    ['exception', outcome('exception')],
    ['incomplete', outcome('incomplete')],
  ])('500 with %s is retried a limited number of times', (_name, body) => {
    const p = policy({ maxAttempts: 5, maxUncertainAttempts: 3 });
    expect(p.decide(response(500, body), 1).kind).toBe('retry');
    expect(p.decide(response(500, body), 2).kind).toBe('retry');
    expect(p.decide(response(500, body), 3)).toMatchObject({ kind: 'fail', permanent: false });
  });

  it.each([
    'not-found',
    'invalid',
    'structure',
    'required',
    'value',
    'invariant',
    'not-supported',
    'forbidden',
    'security',
    'login',
    'suspended',
    'processing',
    'too-costly',
    'business-rule',
  ])('500 with %s fails at once, permanently', (code) => {
    expect(policy().decide(response(500, outcome(code)), 1)).toEqual({ kind: 'fail', reason: `http-500; ${code}`, permanent: true });
  });

  it('prefers a permanent code over a transient one in the same outcome', () => {
    expect(policy().decide(response(500, outcome('transient', 'invalid')), 1)).toMatchObject({ kind: 'fail', permanent: true });
  });

  it.each([400, 401, 403, 404, 405, 410, 412, 422, 501, 505])('%i fails at once, permanently', (status) => {
    expect(policy().decide(response(status, outcome('not-found')), 1)).toMatchObject({ kind: 'fail', permanent: true });
  });

  it('4xx stays permanent even when the outcome says transient', () => {
    expect(policy().decide(response(400, outcome('transient')), 1)).toMatchObject({ kind: 'fail', permanent: true });
  });
});

describe('network errors', () => {
  const errno = (code: string) => Object.assign(new Error('x'), { code });
  it.each([
    ['ECONNRESET', errno('ECONNRESET')],
    ['socket hang up', errno('UND_ERR_SOCKET')],
    ['headers timeout', errno('UND_ERR_HEADERS_TIMEOUT')],
    ['body timeout', errno('UND_ERR_BODY_TIMEOUT')],
    ['deadline', Object.assign(new Error('deadline'), { name: 'TimeoutError' })],
    ['truncated body', errno('UND_ERR_RES_CONTENT_LENGTH_MISMATCH')],
    ['truncated gzip', errno('Z_BUF_ERROR')],
    ['JSON parse error', new SyntaxError('Unexpected end of JSON input')],
    ['malformed page', new MalformedResponseError('body is not valid JSON', true)],
    ['refused connect', errno('ECONNREFUSED')],
    ['token endpoint 503', new SmartAuthError('x', true, 503)],
  ])('%s is retried', (_name, error) => {
    expect(policy().decide({ type: 'error', error }, 1).kind).toBe('retry');
  });

  it.each([
    ['TLS trust failure', errno('CERT_HAS_EXPIRED')],
    ['off-origin URL', new OffOriginUrlError('next-page', 'https://x:443', 'https://y:443')],
    ['invalid_client', new SmartAuthError('x', false, 400, 'invalid_client')],
    ['programming error', new TypeError('boom')],
  ])('%s fails permanently', (_name, error) => {
    expect(policy().decide({ type: 'error', error }, 1)).toMatchObject({ kind: 'fail', permanent: true });
  });
});

describe('non-idempotent requests (plain transactions)', () => {
  const traits = { idempotent: false };
  it('are resent only when the server certainly did not process them', () => {
    expect(policy().decide(response(429), 1, traits).kind).toBe('retry');
    expect(policy().decide(response(503), 1, traits).kind).toBe('retry');
    expect(policy().decide({ type: 'error', error: new FhirNetworkError('econnrefused', 'ECONNREFUSED', true, true) }, 1, traits).kind).toBe('retry');
    expect(policy().decide(response(502), 1, traits)).toMatchObject({ kind: 'fail', permanent: false });
    expect(policy().decide(response(500, outcome('transient')), 1, traits)).toMatchObject({ kind: 'fail', permanent: false });
    expect(policy().decide({ type: 'error', error: new FhirNetworkError('econnreset', 'ECONNRESET', true, false) }, 1, traits)).toMatchObject({
      kind: 'fail',
      permanent: false,
    });
  });
});

describe('issue codes from the server', () => {
  it('are reduced to code-shaped values before they reach reasons, errors and logs', () => {
    const decision = policy().decide(response(500, outcome('Patient Jane Doe not found', 'not-found')), 1);
    expect(decision).toEqual({ kind: 'fail', reason: 'http-500; unrecognized,not-found', permanent: true });
  });
});
