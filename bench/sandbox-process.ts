/**
 * The record-pull benchmark's sandbox EHR, in a process of its own (`bench/remote-sandbox.ts`
 * starts it): a real EHR is another machine, so its heap (the 50,000 resources and its page
 * caches) must not sit in the service's heap, where every full garbage collection of the service
 * would walk it. It still shares this machine's two cores, and its CPU is reported apart.
 *
 * Protocol (IPC): sends `{ type: 'ready', baseUrl, loaded }` once loaded; answers
 * `{ type: 'latency', ms }` with `{ type: 'latency-set' }`; exits when the parent disconnects.
 */
import { performance } from 'node:perf_hooks';
import type { FhirResource } from 'fhir/r4';
import { generateCareTeamRecords } from '../src/fixtures';
import { startSandboxServer, type SandboxServer } from '../src/sandbox';

export interface LoadedSandbox {
  readonly patientId: string;
  readonly total: number;
  readonly counts: Record<string, number>;
  readonly ms: number;
}

export type SandboxMessage = { type: 'ready'; baseUrl: string; loaded: LoadedSandbox } | { type: 'latency-set' } | { type: 'failed'; error: string };
export type SandboxCommand = { type: 'latency'; ms: number };

/** Streams the generator into the sandbox in chunks (the sandbox keeps them; this loop does not). */
async function load(server: SandboxServer, resources: number): Promise<LoadedSandbox> {
  const t0 = performance.now();
  const counts: Record<string, number> = {};
  const patients: string[] = [];
  let chunk: FhirResource[] = [];
  let total = 0;
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    total += (await server.load(chunk)).total;
    chunk = [];
  };
  for await (const r of generateCareTeamRecords({ seed: 1, team: 'a', targetResources: resources })) {
    counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
    if (r.resourceType === 'Patient' && r.id) patients.push(r.id);
    chunk.push(r);
    if (chunk.length >= 5000) await flush();
  }
  await flush();
  if (patients.length !== 1 || patients[0] === undefined) throw new Error(`expected one Patient in the fixture, got ${patients.length}`);
  if (total !== resources) throw new Error(`sandbox stored ${total} resources, expected ${resources}`);
  return { patientId: patients[0], total, counts, ms: performance.now() - t0 };
}

async function main(): Promise<void> {
  const send = (message: SandboxMessage): void => {
    process.send?.(message);
  };
  try {
    const server = await startSandboxServer({ name: 'bench-care-team', auth: 'none', paging: 'offset' });
    const loaded = await load(server, Number(process.argv[2] ?? '50000'));
    process.on('message', (command: SandboxCommand) => {
      if (command.type === 'latency') {
        server.latencyMs = command.ms;
        send({ type: 'latency-set' });
      }
    });
    process.on('disconnect', () => {
      void server.stop().finally(() => process.exit(0));
    });
    send({ type: 'ready', baseUrl: server.baseUrl, loaded });
  } catch (err) {
    send({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
}

void main();
