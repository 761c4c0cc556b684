import { FhirClientError, FhirNetworkError, MalformedResponseError } from './errors';
import { ADDRESS_REFUSED_CODE } from './url-guard';

/** Codes of errors raised while connecting: the request never left this process. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** Transport failures worth another attempt. */
const RETRYABLE_CODES = new Set([
  ...CONNECT_CODES,
  'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED',
  'UND_ERR_SOCKET', // "other side closed", socket hang up
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_CLOSED',
  'Z_BUF_ERROR', 'Z_DATA_ERROR', // truncated or corrupt gzip body
]);

/** Codes that never get better on retry: TLS trust failures and our own address refusal. */
const PERMANENT_CODES = new Set([
  ADDRESS_REFUSED_CODE,
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/**
 * Maps whatever the HTTP stack threw (undici errors, errno errors, zlib errors, JSON SyntaxError)
 * onto a typed error of this layer. Errors of this layer pass through unchanged.
 */
export function toFhirClientError(err: unknown): FhirClientError {
  if (err instanceof FhirClientError) return err;
  if (err instanceof SyntaxError) return new MalformedResponseError('body is not valid JSON', true, { cause: err });
  const code = errorCode(err);
  const proxyStatus = proxyRefusal(err);
  if (proxyStatus !== undefined) {
    // The outbound proxy answered the CONNECT with an error (407: our credentials; 403: its policy):
    // the request never reached the EHR. Only the proxy's own 5xx and 429 may pass.
    const retryable = proxyStatus >= 500 || proxyStatus === 429;
    return new FhirNetworkError(`the outbound proxy refused the tunnel (HTTP ${proxyStatus})`, 'PROXY_REFUSED', retryable, true, { cause: err });
  }
  if (code === 'UND_ERR_ABORTED' || (err instanceof Error && err.name === 'TimeoutError')) {
    return new FhirNetworkError('timeout', code ?? 'TIMEOUT', true, false, { cause: err });
  }
  if (code !== undefined && PERMANENT_CODES.has(code)) {
    return new FhirNetworkError(code === ADDRESS_REFUSED_CODE ? 'address refused' : 'TLS failure', code, false, true, { cause: err });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new FhirNetworkError('no byte of the body received within the idle timeout', code, true, false, { cause: err });
  }
  if (code !== undefined && RETRYABLE_CODES.has(code)) {
    return new FhirNetworkError(code.toLowerCase(), code, true, CONNECT_CODES.has(code), { cause: err });
  }
  return new FhirNetworkError('unexpected transport error', code, false, false, { cause: err });
}

/**
 * The status of a proxy's refused CONNECT: undici reports it as an abort ("Proxy response (407) !== 200
 * when HTTP Tunneling"), which must not read as a timeout.
 */
function proxyRefusal(err: unknown): number | undefined {
  const match = err instanceof Error ? /^Proxy response \((\d{3})\) !== 200/.exec(err.message) : null;
  return match?.[1] !== undefined ? Number(match[1]) : undefined;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // undici wraps connect errors: the errno error is the cause.
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err ? errorCode(cause) : undefined;
}

/** True for errors raised by the HTTP stack (as opposed to, say, a caller's sink failing). */
export function isTransportError(err: unknown): boolean {
  if (err instanceof FhirClientError || err instanceof SyntaxError) return true;
  if (err instanceof Error && err.name === 'TimeoutError') return true;
  const code = errorCode(err);
  return code !== undefined && (code.startsWith('UND_ERR') || RETRYABLE_CODES.has(code) || PERMANENT_CODES.has(code));
}
