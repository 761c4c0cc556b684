/**
 * What each fault does to a response, for the faults that are expressed as a response (status
 * faults, before the request is handled) or as a change of the real response (after). Faults that
 * act on the socket (hang, reset, truncated) are carried out by the request handler.
 */
import { expiredToken } from '../smart/bearer-auth';
import { FHIR_JSON, outcomeResponse, simpleOutcome, type SandboxResponse } from '../http/sandbox-response';
import type { FaultAction, RetryAfterFormat } from './fault-types';

/** The response of a fault that answers instead of the server (429, 503, 500, 403, 401, 3xx). */
export function faultStatusResponse(action: FaultAction, now: number): SandboxResponse | undefined {
  switch (action.kind) {
    case 'rate-limit':
      return outcomeResponse(429, simpleOutcome('error', 'throttled', 'Too many requests (sandbox fault)'), retryAfterHeader(action, now));
    case 'unavailable':
      return outcomeResponse(503, simpleOutcome('error', 'transient', 'Service unavailable (sandbox fault)'), retryAfterHeader(action, now));
    case 'server-error':
      return outcomeResponse(500, simpleOutcome('fatal', 'exception', action.message ?? 'Internal server error (sandbox fault)'));
    case 'forbidden':
      return outcomeResponse(403, simpleOutcome('error', action.code ?? 'forbidden', 'Forbidden (sandbox fault)'));
    case 'expired-token':
      return expiredToken();
    case 'redirect':
      return { status: action.status ?? 302, headers: { location: action.location, 'content-length': '0' }, body: '' };
    default:
      return undefined;
  }
}

/**
 * `Retry-After` as delta-seconds or HTTP-date (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after).
 * An HTTP-date has one-second resolution, so it is rounded up to the next whole second.
 */
function retryAfterHeader(action: { retryAfterSeconds?: number; retryAfterFormat?: RetryAfterFormat }, now: number): Record<string, string> {
  if (action.retryAfterSeconds === undefined) {
    return {};
  }
  if (action.retryAfterFormat === 'http-date') {
    const at = Math.ceil((now + action.retryAfterSeconds * 1000) / 1000) * 1000;
    return { 'retry-after': new Date(at).toUTCString() };
  }
  return { 'retry-after': String(action.retryAfterSeconds) };
}

/** 200 with the first half of the real body and then junk: a complete HTTP message that is not JSON. */
export function malformedJson(response: SandboxResponse): SandboxResponse {
  const body = Buffer.isBuffer(response.body) ? response.body.toString('utf8') : response.body;
  const broken = `${body.slice(0, Math.floor(body.length / 2))}"}]},{<<< not JSON`;
  return { status: 200, headers: { ...response.headers, 'content-type': FHIR_JSON }, body: broken };
}

/** The response's JSON body as a value, or undefined when it is not JSON. */
function jsonBody(response: SandboxResponse): unknown {
  const body = Buffer.isBuffer(response.body) ? response.body.toString('utf8') : response.body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** A Bundle as these faults see it. */
type LinkedBundle = { resourceType?: unknown; type?: unknown; link?: { relation?: string; url?: string }[]; entry?: unknown[] };

/** The bundle's link of `relation`, if any. */
const linkOf = (bundle: LinkedBundle | undefined, relation: string) => bundle?.link?.find((link) => link.relation === relation);

/**
 * The real response with its `next` link moved to `origin` (path and query kept), or, with `base`, its
 * `serverBase` prefix (the server's own base URL) replaced by `base`.
 */
export function withForeignNextLink(response: SandboxResponse, action: { readonly origin: string; readonly base?: string }, serverBase: string): SandboxResponse {
  const parsed = jsonBody(response) as LinkedBundle | undefined;
  const next = linkOf(parsed, 'next');
  if (!next?.url) {
    return response;
  }
  if (action.base !== undefined && next.url.startsWith(serverBase)) {
    next.url = `${action.base.replace(/\/$/, '')}${next.url.slice(serverBase.replace(/\/$/, '').length)}`;
  } else {
    const url = new URL(next.url);
    next.url = new URL(url.pathname + url.search, action.origin).toString();
  }
  return { ...response, body: JSON.stringify(parsed) };
}

/** The real page with its `next` link (when it has one) pointing at the page itself (`self`). */
export function withNextLinkToSelf(response: SandboxResponse): SandboxResponse {
  const parsed = jsonBody(response) as LinkedBundle | undefined;
  const next = linkOf(parsed, 'next');
  const self = linkOf(parsed, 'self');
  if (!next || !self?.url) {
    return response;
  }
  next.url = self.url;
  return { ...response, body: JSON.stringify(parsed) };
}

/**
 * The real page with a `next` link even when it ends the results: its `self` link with the offset
 * (`_offset`, or HAPI's `_getpagesoffset`) moved on by `_count`.
 */
export function withEndlessNextLink(response: SandboxResponse): SandboxResponse {
  const parsed = jsonBody(response) as LinkedBundle | undefined;
  const self = linkOf(parsed, 'self');
  if (parsed?.type !== 'searchset' || !self?.url || linkOf(parsed, 'next')) {
    return response;
  }
  const url = new URL(self.url);
  const count = Number(url.searchParams.get('_count') ?? '0');
  const param = url.searchParams.has('_getpagesoffset') ? '_getpagesoffset' : '_offset';
  url.searchParams.set(param, String(Number(url.searchParams.get(param) ?? '0') + Math.max(1, count)));
  parsed.link = [...(parsed.link ?? []), { relation: 'next', url: url.toString() }];
  return { ...response, body: JSON.stringify(parsed) };
}

/** The real page (its links, total…) with the entries of `first`, the query's first page. */
export function withEntriesOf(response: SandboxResponse, first: SandboxResponse): SandboxResponse {
  const page = jsonBody(response) as LinkedBundle | undefined;
  const firstPage = jsonBody(first) as LinkedBundle | undefined;
  if (page?.type !== 'searchset' || firstPage?.type !== 'searchset') {
    return response;
  }
  page.entry = firstPage.entry ?? [];
  return { ...response, body: JSON.stringify(page) };
}

/** A searchset answer with the server's OperationOutcome (`search.mode = outcome`) as its first entry. */
export function withSearchOutcome(response: SandboxResponse, action: Extract<FaultAction, { kind: 'search-outcome' }>): SandboxResponse {
  const bundle = jsonBody(response) as LinkedBundle | undefined;
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'searchset') {
    return response;
  }
  const outcome = {
    resourceType: 'OperationOutcome',
    issue: [{ severity: action.severity ?? 'warning', code: action.code ?? 'informational', diagnostics: action.message }],
  };
  bundle.entry = [{ resource: outcome, search: { mode: 'outcome' } }, ...(bundle.entry ?? [])];
  return { ...response, body: JSON.stringify(bundle) };
}
