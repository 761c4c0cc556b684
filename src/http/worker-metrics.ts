/**
 * A worker's own HTTP port (`METRICS_PORT`, role `worker`): the process's metrics and its requests to
 * the EHRs' FHIR servers (`fhir/request-metrics.ts`) at `GET /metrics`, and its health probes:
 * `GET /healthz` (the process answers) and `GET /readyz` (each readiness check: PostgreSQL, the
 * schema, the worker's Redis connection; 503 naming those that fail, their reasons logged only).
 * The work and queue gauges, read from PostgreSQL and Redis and the same from any process, stay with
 * the API's `/metrics`. Nothing else is served, and nothing here carries an id of a case or PHI.
 * @packageDocumentation
 */
import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { fhirRequestRegistry } from '../fhir/request-metrics';
import { listenOn } from './listen';
import { readinessAnswer, type ReadinessCheck } from './readiness-check';

export interface WorkerMetricsServer {
  /** Base URL (`/metrics`, `/healthz`, `/readyz` below it). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  close(): Promise<void>;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

export async function startWorkerMetricsServer(host: string, port: number, readiness: readonly ReadinessCheck[] = []): Promise<WorkerMetricsServer> {
  const own = new Registry();
  collectDefaultMetrics({ register: own });
  const registry = Registry.merge([own, fhirRequestRegistry]);
  const server = http.createServer((req, res) => {
    const route = req.url?.split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('Method not allowed: this port serves GET /metrics, /healthz and /readyz only\n');
      return;
    }
    if (route === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
      return;
    }
    if (route === '/healthz') {
      json(res, 200, { status: 'ok' });
      return;
    }
    if (route === '/readyz') {
      // Never rejects: each check's failure is its `unavailable` state.
      void readinessAnswer(readiness).then((answer) => json(res, answer.status, answer.body));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: this port serves GET /metrics, /healthz and /readyz only\n');
  });
  const listening = await listenOn(server, port, host);
  return {
    url: listening.url,
    port: listening.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
