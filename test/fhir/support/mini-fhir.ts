import type { ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type KeyLike, type ProtectedHeaderParameters } from 'jose';
import { sendJson, startTestServer, type TestServer } from './http-server';

/** A fault served instead of the next FHIR response (tokens and discovery are never faulted). */
export type Fault =
  | { readonly type: 'status'; readonly status: number; readonly body?: unknown; readonly headers?: Record<string, string> }
  | { readonly type: 'reset' }
  | { readonly type: 'hang' }
  | { readonly type: 'truncate' }
  | { readonly type: 'malformed' };

export interface MiniFhirOptions {
  /** Observations available to search. Default 25. */
  readonly total?: number;
  /** Gzip FHIR responses when the client accepts it. */
  readonly gzip?: boolean;
  /** Require SMART backend auth, verifying assertions with this key. */
  readonly smart?: {
    readonly publicKey: KeyLike;
    readonly clientId: string;
    readonly expiresIn?: number;
    /** The token response's `scope`: default the scope requested; null leaves the field out (RFC 6749 §5.1). */
    readonly grantScope?: string | null;
  };
}

export interface VerifiedAssertion {
  readonly header: ProtectedHeaderParameters;
  readonly payload: JWTPayload;
  readonly form: URLSearchParams;
}

export interface MiniFhir {
  readonly server: TestServer;
  readonly url: string;
  readonly faults: Fault[];
  readonly assertions: VerifiedAssertion[];
  tokenRequests: number;
  /** Tokens the server accepts; clear it to simulate expiry/revocation. */
  readonly validTokens: Set<string>;
  /** Exact bytes of each FHIR body served (before gzip). */
  readonly served: Buffer[];
  /** How many of the next smart-configuration answers are cut off (not JSON). */
  malformedSmartConfigs: number;
  close(): Promise<void>;
}

export function observation(i: number): unknown {
  return {
    resourceType: 'Observation',
    id: `obs-${i}`,
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }] },
    subject: { reference: 'Patient/p1' },
    valueQuantity: { value: 12 + (i % 10) / 10, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
  };
}

/** A small FHIR R4 server on 127.0.0.1 with SMART auth, paging, gzip and fault injection. */
export async function startMiniFhir(options: MiniFhirOptions = {}): Promise<MiniFhir> {
  const total = options.total ?? 25;
  const state: MiniFhir = {
    server: await startTestServer(),
    url: '',
    faults: [],
    malformedSmartConfigs: 0,
    assertions: [],
    tokenRequests: 0,
    validTokens: new Set(),
    served: [],
    close: () => state.server.close(),
  };
  Object.assign(state, { url: `${state.server.url}/fhir` });

  const reply = (res: ServerResponse, status: number, body: unknown, acceptGzip: boolean, headers: Record<string, string> = {}): void => {
    const raw = Buffer.from(JSON.stringify(body));
    state.served.push(raw);
    if (options.gzip && acceptGzip) {
      const gz = zlib.gzipSync(raw);
      res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-encoding': 'gzip', 'content-length': gz.length, ...headers });
      res.end(gz);
    } else {
      res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-length': raw.length, ...headers });
      res.end(raw);
    }
  };

  state.server.handle(async (req, res, body) => {
    const url = new URL(req.url ?? '/', state.server.url);
    const path = url.pathname;
    if (path === '/fhir/.well-known/smart-configuration') {
      if (state.malformedSmartConfigs > 0) {
        state.malformedSmartConfigs -= 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end('{"token_endpoint":');
      }
      sendJson(res, 200, { token_endpoint: `${state.server.url}/auth/token`, grant_types_supported: ['client_credentials'] });
      return;
    }
    if (path === '/auth/token' && req.method === 'POST') {
      state.tokenRequests += 1;
      const form = new URLSearchParams(body.toString('utf8'));
      const assertion = form.get('client_assertion') ?? '';
      if (!options.smart) return void sendJson(res, 400, { error: 'invalid_client' });
      try {
        const { payload } = await jwtVerify(assertion, options.smart.publicKey, {
          issuer: options.smart.clientId,
          subject: options.smart.clientId,
          audience: `${state.server.url}/auth/token`,
          typ: 'JWT',
        });
        state.assertions.push({ header: decodeProtectedHeader(assertion), payload, form });
      } catch {
        return void sendJson(res, 401, { error: 'invalid_client' });
      }
      const token = `tok-${state.tokenRequests}`;
      state.validTokens.add(token);
      // A little latency so concurrent callers really overlap with the in-flight request.
      await new Promise((r) => setTimeout(r, 30));
      const { grantScope } = options.smart;
      const scope = grantScope === undefined ? form.get('scope') : grantScope;
      sendJson(res, 200, { access_token: token, token_type: 'bearer', expires_in: options.smart.expiresIn ?? 300, ...(scope === null ? {} : { scope }) });
      return;
    }
    if (!path.startsWith('/fhir/')) return void res.writeHead(404).end();
    if (options.smart) {
      const auth = req.headers.authorization ?? '';
      if (!auth.startsWith('Bearer ') || !state.validTokens.has(auth.slice(7))) {
        return void sendJson(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
      }
    }
    const fault = state.faults.shift();
    if (fault) {
      switch (fault.type) {
        case 'status':
          return void sendJson(res, fault.status, fault.body ?? {}, fault.headers);
        case 'reset':
          return void req.socket.destroy();
        case 'hang':
          return; // never answers
        case 'malformed': {
          res.writeHead(200, { 'content-type': 'application/fhir+json' });
          return void res.end('{"resourceType":"Bundle",');
        }
        case 'truncate': {
          res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': 1000 });
          res.write('{"resourceType":"Bundle","type":"searchset","entry":[');
          setImmediate(() => req.socket.destroy());
          return;
        }
      }
    }
    const acceptGzip = /gzip/.test(String(req.headers['accept-encoding'] ?? ''));
    const rest = path.slice('/fhir/'.length);
    if (rest === 'metadata') {
      return reply(res, 200, { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['json'], date: '2024-01-01' }, acceptGzip);
    }
    if (rest === 'Observation') {
      const count = Number(url.searchParams.get('_count') ?? '10');
      const offset = Number(url.searchParams.get('_offset') ?? '0');
      const entries = [];
      for (let i = offset; i < Math.min(total, offset + count); i += 1) entries.push({ fullUrl: `${state.url}/Observation/obs-${i}`, resource: observation(i) });
      const link = [{ relation: 'self', url: `${state.url}/Observation?_count=${count}&_offset=${offset}` }];
      if (offset + count < total) link.push({ relation: 'next', url: `${state.url}/Observation?_count=${count}&_offset=${offset + count}` });
      return reply(res, 200, { resourceType: 'Bundle', type: 'searchset', total, link, entry: entries }, acceptGzip);
    }
    const read = /^Patient\/([A-Za-z0-9\-.]+)$/.exec(rest);
    if (read) {
      if (read[1] === 'missing') return reply(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }, acceptGzip);
      return reply(res, 200, { resourceType: 'Patient', id: read[1], gender: 'female' }, acceptGzip);
    }
    return reply(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] }, acceptGzip);
  });
  return state;
}
