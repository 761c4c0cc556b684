import fs from 'node:fs';
import path from 'node:path';
import { startSandboxServer, type SandboxServer } from '../../src/sandbox';
import v8 from 'node:v8';
import Transport from 'winston-transport';
import os from 'node:os';
import { AssemblyMemory, AssemblyTooLargeError, availableMemoryBytes, BYTES_PER_RESOURCE, configureAssemblyMemory, processAssemblyMemory } from '../../src/assembly/assembly-memory';
import { logger } from '../../src/log';
import { fixtureBundle, fixtureIntake, fixturePatientId } from '../support/fixture-child';
import { eventually, startTestService, type TestService } from '../support/service';
import { SHARED_DATA } from '../support/synthea';

describe('AssemblyMemory', () => {
  const budget = 100 * BYTES_PER_RESOURCE;

  it('lets assemblies in while they fit together; the next waits for a release, first come first served', async () => {
    const memory = new AssemblyMemory(budget);
    const first = await memory.reserve(60);
    const order: string[] = [];
    const second = memory.reserve(60).then((release) => (order.push('second'), release));
    const third = memory.reserve(10).then((release) => (order.push('third'), release));
    await Promise.resolve();
    expect(memory.state()).toEqual({ heldBytes: 60 * BYTES_PER_RESOURCE, waiting: 2 });
    first();
    first(); // a second release changes nothing
    const releaseSecond = await second;
    const releaseThird = await third;
    expect(order).toEqual(['second', 'third']);
    expect(memory.state()).toEqual({ heldBytes: 70 * BYTES_PER_RESOURCE, waiting: 0 });
    releaseSecond();
    releaseThird();
    expect(memory.state()).toEqual({ heldBytes: 0, waiting: 0 });
  });

  it('refuses at once an assembly that alone exceeds the budget, naming the case size and the setting', async () => {
    const memory = new AssemblyMemory(budget);
    const err = await memory.reserve(101).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AssemblyTooLargeError);
    expect((err as AssemblyTooLargeError).status).toBe(503);
    expect((err as AssemblyTooLargeError).detail).toMatch(/^The case holds 101 raw resources: assembling it needs about 1 MB, more than this process allows assemblies \(0 MB, ASSEMBLY_MEMORY_MB\)/);
    expect(memory.state()).toEqual({ heldBytes: 0, waiting: 0 });
  });

  it('refuses the waiting assemblies a smaller budget can never hold', async () => {
    const memory = new AssemblyMemory(budget);
    const first = await memory.reserve(50);
    const waiting = memory.reserve(80).catch((e: unknown) => e);
    memory.setBudget(60 * BYTES_PER_RESOURCE);
    expect(await waiting).toBeInstanceOf(AssemblyTooLargeError);
    first();
    expect(memory.state()).toEqual({ heldBytes: 0, waiting: 0 });
  });
});

describe('ASSEMBLY_MEMORY_MB', () => {
  it('sets the budget, and warns when it is more than the process has memory for (the thread heap it caps would outgrow the machine)', () => {
    const warnings: string[] = [];
    const capture = new (class extends Transport {
      override log(info: { level: string; message: string }, next: () => void): void {
        if (info.level === 'warn') warnings.push(info.message);
        next();
      }
    })();
    logger.add(capture);
    try {
      const memory = new AssemblyMemory();
      configureAssemblyMemory(memory, 64);
      expect({ budget: memory.budgetBytes, warnings }).toEqual({ budget: 64 * 1024 * 1024, warnings: [] });
      // Above the main thread's heap limit is fine: the budget caps the assembly thread's own heap.
      const heapMb = Math.floor(v8.getHeapStatistics().heap_size_limit / 1048576);
      configureAssemblyMemory(memory, heapMb + 1, 64 * 1024 * 1048576);
      expect(warnings).toEqual([]);
      // On a 4 GB container, 3.5 GB for assemblies leaves too little for the rest of the process.
      configureAssemblyMemory(memory, 3_500, 4_096 * 1048576);
      expect(memory.budgetBytes).toBe(3_500 * 1048576);
      expect(warnings).toEqual(['ASSEMBLY_MEMORY_MB is more than this process has memory for: an assembly that large would run the machine (or container) out of memory']);
      expect(availableMemoryBytes()).toBeGreaterThan(0);
      expect(availableMemoryBytes()).toBeLessThanOrEqual(os.totalmem());
    } finally {
      logger.remove(capture);
    }
  });
});

describe('a case too large for the process', () => {
  let svc: TestService;
  let server: SandboxServer;

  beforeAll(async () => {
    // 1 MB: about 100 raw resources; care team A's fixture child has ~250.
    svc = await startTestService({ ASSEMBLY_MEMORY_MB: '1', PULL_JOB_BACKOFF_MS: '20' });
    server = await startSandboxServer({ name: 'care-team-a', auth: 'none' });
    await server.load(fixtureBundle('care-team-a'));
  });
  afterAll(async () => {
    await Promise.all([svc.stop(), server.stop()]);
  });

  it('is not assembled: the pull ends, the case managers are told why, a rebuild answers 503 naming its size', async () => {
    const admin = await svc.token('admin');
    const cm = await svc.token('case_manager');
    const endpoint = await svc.request('POST', '/api/endpoints', { token: admin, body: { name: 'Team A', baseUrl: server.baseUrl, auth: { type: 'none' }, allowInsecureHttp: true, maxRequestsPerSecond: 1000 } });
    const endpointId = ((await endpoint.json()) as { id: string }).id;
    const { id: caseId } = (await (await svc.request('POST', '/api/cases', { token: cm, body: fixtureIntake() })).json()) as { id: string };
    expect((await svc.request('POST', `/api/cases/${caseId}/sources`, { token: cm, body: { endpointId, patient: { id: fixturePatientId('care-team-a') } } })).status).toBe(201);
    const { pullId } = (await (await svc.request('POST', `/api/cases/${caseId}/pulls`, { token: cm, body: {} })).json()) as { pullId: string };

    const notes = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.type === 'assembly.failed'),
    );
    const failed = notes.find((n) => n.type === 'assembly.failed');
    expect(failed?.message).toMatch(/^The case bundle could not be assembled after the record pull \(The case holds \d+ raw resources: assembling it needs about \d+ MB, more than this process allows assemblies \(1 MB, ASSEMBLY_MEMORY_MB\)\./);
    const pull = (await (await svc.request('GET', `/api/cases/${caseId}/pulls/${pullId}`, { token: cm })).json()) as { state: string; totals: { resources: number } };
    expect(pull.state).toBe('complete');
    const record = (await (await svc.request('GET', `/api/cases/${caseId}`, { token: cm })).json()) as { status: string; records: unknown };
    expect({ status: record.status, records: record.records }).toEqual({ status: 'collecting_records', records: null });

    const rebuild = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
    expect(rebuild.status).toBe(503);
    const problem = (await rebuild.json()) as { detail: string; resources: number; budgetMb: number };
    expect(problem).toMatchObject({ resources: pull.totals.resources, budgetMb: 1 });
    expect(problem.detail).toContain(`The case holds ${pull.totals.resources} raw resources`);

    // The family uploads a letter: its file is kept, the upload says it failed and why, the case managers are told.
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(path.join(SHARED_DATA, 'pdf/minimal-document.pdf'))]), 'letter.pdf');
    const posted = await fetch(`${svc.url}/api/cases/${caseId}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${cm}` }, body: form });
    expect(posted.status).toBe(202);
    const { uploadId } = (await posted.json()) as { uploadId: string };
    const uploads = await eventually(
      async () => (await (await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm })).json()) as { items: { uploadId: string; state: string; failure?: string; files: { state: string }[] }[] },
      (u) => u.items.some((x) => x.uploadId === uploadId && x.state === 'failed'),
    );
    const upload = uploads.items.find((x) => x.uploadId === uploadId);
    expect(upload?.failure).toMatch(/^The case holds \d+ raw resources: assembling it needs about \d+ MB, more than this process allows assemblies \(1 MB, ASSEMBLY_MEMORY_MB\)/);
    expect(upload?.files.map((f) => f.state)).toEqual(['parsed']);
    const told = await eventually(
      async () => ((await (await svc.request('GET', `/api/notifications?caseId=${caseId}`, { token: cm })).json()) as { items: { type: string; message: string }[] }).items,
      (items) => items.some((n) => n.message.startsWith("The family's upload could not be taken into the case bundle")),
    );
    expect(told.filter((n) => n.type === 'assembly.failed')).toHaveLength(2);

    // Workers with more memory: the rebuild assembles the case, the upload's file with it.
    processAssemblyMemory.setBudget(64 * 1024 * 1024);
    const rebuilt = await svc.request('POST', `/api/cases/${caseId}/bundle/rebuild`, { token: cm, body: {} });
    expect(rebuilt.status).toBe(201);
    const { version } = (await rebuilt.json()) as { version: number };
    const after = (await (await svc.request('GET', `/api/cases/${caseId}/uploads`, { token: cm })).json()) as { items: { uploadId: string; state: string; failure?: string; bundleVersion?: number }[] };
    expect(after.items.find((x) => x.uploadId === uploadId)).toMatchObject({ state: 'ingested', bundleVersion: version });
    expect(after.items.find((x) => x.uploadId === uploadId)?.failure).toBeUndefined();
  }, 60_000);
});
