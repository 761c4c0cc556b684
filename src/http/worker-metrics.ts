/**
 * A worker's own Prometheus endpoint (`METRICS_PORT`, role `worker`): the process's metrics and its
 * requests to the EHRs' FHIR servers (`fhir/request-metrics.ts`), at `GET /metrics`. The work and
 * queue gauges, read from PostgreSQL and Redis and the same from any process, stay with the API's
 * `/metrics`. Nothing else is served, and nothing here carries an id of a case or PHI.
 * @packageDocumentation
 */
import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { fhirRequestRegistry } from '../fhir/request-metrics';
import { listenOn } from './listen';

export interface WorkerMetricsServer {
  /** Base URL (`/metrics` below it). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startWorkerMetricsServer(host: string, port: number): Promise<WorkerMetricsServer> {
  const own = new Registry();
  collectDefaultMetrics({ register: own });
  const registry = Registry.merge([own, fhirRequestRegistry]);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: this port serves GET /metrics only\n');
  });
  return {
    url: (await listenOn(server, port, host)).url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
