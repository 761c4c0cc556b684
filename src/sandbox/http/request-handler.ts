/**
 * The `http.Server` request listener of a sandbox server: records the request, applies latency and
 * faults, dispatches, and writes the response in one call (or, for socket faults, does not).
 *
 * Fault order: latency (global + latency rules) first, a `hold` until the test releases it, then a status fault (429/503/500/401/3xx),
 * hang or reset instead of handling the request; or, for malformed-json, truncated,
 * foreign-next-link, search-outcome, paging-loop, stuck-paging and endless-paging, the request is handled and its real
 * response is altered; for ignore-parameter, the request is handled without that search parameter,
 * and for ignore-if-none-exist without its create conditions (faults/fault-requests.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { faultStatusResponse, malformedJson, withEndlessNextLink, withEntriesOf, withForeignNextLink, withNextLinkToSelf, withSearchOutcome } from '../faults/fault-responses';
import type { FaultRegistry } from '../faults/fault-registry';
import { faultedRequest } from '../faults/fault-requests';
import type { FaultAction } from '../faults/fault-types';
import type { RecordedRequest, RequestLog } from '../observability/request-log';
import type { Delays } from './delays';
import { dispatch } from './dispatch';
import type { RouteContext } from './route-context';
import { headerValue, readBody, toSandboxRequest, withoutParameter } from './sandbox-request';
import { outcomeResponse, simpleOutcome, type SandboxResponse } from './sandbox-response';

export interface HandlerDependencies {
  readonly ctx: RouteContext;
  readonly origin: string;
  readonly basePath: string;
  readonly faults: FaultRegistry;
  readonly log: RequestLog;
  readonly delays: Delays;
  /** Global latency per request (ms); read on every request so it can be changed at run time. */
  readonly latencyMs: () => number;
  /** Called with the socket of a request that will never be answered (hang). */
  readonly onHang: (res: ServerResponse) => void;
}

export function createRequestHandler(deps: HandlerDependencies): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        const text = err instanceof Error ? err.message : String(err);
        send(res, outcomeResponse(500, simpleOutcome('fatal', 'exception', text)));
      }
    });
  };
}

async function handle(deps: HandlerDependencies, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const request = toSandboxRequest(req, body, deps.origin, deps.basePath);
  const record = deps.log.record({
    method: request.method,
    target: request.target,
    status: undefined,
    hadAuthorization: headerValue(request.headers, 'authorization') !== undefined,
    at: deps.ctx.now(),
  });
  const decision = deps.faults.decide(request.method, request.target);
  await deps.delays.wait(deps.latencyMs() + decision.latencyMs);
  await decision.held;
  if (res.destroyed) {
    return;
  }
  const action = decision.action;
  if (action?.kind === 'hang') {
    deps.onHang(res);
    return;
  }
  if (action?.kind === 'reset') {
    resetConnection(res);
    return;
  }
  const statusFault = action ? faultStatusResponse(action, deps.ctx.now()) : undefined;
  const handled = faultedRequest(request, action);
  let response = statusFault ?? alter(await dispatch(deps.ctx, handled), action, `${deps.origin}${deps.basePath}`);
  if (action?.kind === 'stuck-paging') {
    // The first page: the same request without the paging offset (either paging style).
    response = withEntriesOf(response, await dispatch(deps.ctx, withoutParameter(withoutParameter(request, '_offset'), '_getpagesoffset')));
  }
  if (action?.kind === 'truncated') {
    sendTruncated(res, response, action.fraction ?? 0.5);
    return;
  }
  send(res, response, record);
}

function alter(response: SandboxResponse, action: FaultAction | undefined, serverBase: string): SandboxResponse {
  if (action?.kind === 'malformed-json') {
    return malformedJson(response);
  }
  if (action?.kind === 'foreign-next-link') {
    return withForeignNextLink(response, action, serverBase);
  }
  if (action?.kind === 'search-outcome') {
    return withSearchOutcome(response, action);
  }
  if (action?.kind === 'paging-loop') {
    return withNextLinkToSelf(response);
  }
  if (action?.kind === 'endless-paging') {
    return withEndlessNextLink(response);
  }
  return response;
}

function send(res: ServerResponse, response: SandboxResponse, record?: RecordedRequest): void {
  if (res.destroyed) {
    return;
  }
  const length = Buffer.byteLength(response.body);
  res.writeHead(response.status, { ...response.headers, 'content-length': String(length) });
  res.end(response.body);
  if (record) {
    record.status = response.status;
  }
}

/** Real Content-Length, part of the body, then the socket is closed: a page cut off mid-body. */
function sendTruncated(res: ServerResponse, response: SandboxResponse, fraction: number): void {
  const body = Buffer.isBuffer(response.body) ? response.body : Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
  const sent = Math.min(body.length - 1, Math.floor(body.length * fraction));
  res.write(body.subarray(0, Math.max(0, sent)), () => res.socket?.destroy());
}

/** Drops the connection with a TCP RST (ECONNRESET on the client). */
function resetConnection(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && typeof socket.resetAndDestroy === 'function') {
    socket.resetAndDestroy();
  } else {
    socket?.destroy();
  }
}
