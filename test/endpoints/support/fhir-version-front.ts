import type { CapabilityStatement } from 'fhir/r4';
import type { SandboxServer } from '../../../src/sandbox';
import { startTestServer, type TestServer } from '../../fhir/support/http-server';

/** A real HTTP front of a sandbox EHR whose CapabilityStatement declares `fhirVersion` (undefined: the element left out). */
export interface FhirVersionFront {
  readonly server: TestServer;
  readonly baseUrl: string;
  fhirVersion: string | undefined;
}

/**
 * Passes every request on to the sandbox `ehr` and its answer back, except that `GET /metadata`'s
 * `fhirVersion` is replaced by the front's current `fhirVersion` (a DSTU3 or R5 server, or one that
 * omits it), which the test may change between requests.
 */
export async function fhirVersionFront(ehr: SandboxServer, fhirVersion: string | undefined): Promise<FhirVersionFront> {
  const upstream = new URL(ehr.baseUrl);
  const front: { fhirVersion: string | undefined } = { fhirVersion };
  const server = await startTestServer(async (req, res, body) => {
    const headers: Record<string, string> = {};
    for (const name of ['accept', 'content-type', 'if-match', 'if-none-exist', 'prefer', 'authorization']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const path = (req.url ?? '').replace(/^\/fhir/, '');
    const answer = await fetch(`${upstream.origin}${upstream.pathname}${path}`, { method: req.method, headers, ...(body.length > 0 ? { body } : {}) });
    let payload = Buffer.from(await answer.arrayBuffer());
    if (req.method === 'GET' && /^\/metadata(?:\?|$)/.test(path) && answer.status === 200) {
      const { fhirVersion: _declared, ...statement } = JSON.parse(payload.toString('utf8')) as CapabilityStatement;
      payload = Buffer.from(JSON.stringify(front.fhirVersion === undefined ? statement : { ...statement, fhirVersion: front.fhirVersion }));
    }
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/fhir+json', 'content-length': payload.length });
    res.end(payload);
  });
  return {
    server,
    baseUrl: `${server.url}/fhir`,
    get fhirVersion() {
      return front.fhirVersion;
    },
    set fhirVersion(value: string | undefined) {
      front.fhirVersion = value;
    },
  };
}
