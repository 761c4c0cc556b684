import { insertBundleVersion } from '../../src/assembly/bundle-repository';
import { sampleIntake } from '../support/intake';
import { startTestService } from '../support/service';

/**
 * Stopping the service does not wait for ever on a client that stopped reading a streamed body: a
 * ~30 MB case bundle is requested and its body never read (far more than the socket buffers hold),
 * and the service still stops, its connections closed after the grace period.
 */
it('stops even while a client holds a streamed bundle it does not read', async () => {
  const svc = await startTestService({ ROLE: 'api' });
  let stopped = false;
  try {
    const cm = await svc.token('case_manager');
    const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
    const entry = Array.from({ length: 30_000 }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-5000-8000-${String(i).padStart(12, '0')}`,
      resource: { resourceType: 'Basic' as const, id: String(i), code: { text: 'x'.repeat(1000) } },
    }));
    await insertBundleVersion(svc.service.db, { caseId: id, bundleId: 'b', bundle: { resourceType: 'Bundle', type: 'document', entry }, report: {}, options: {}, trigger: 'test' });
    const res = await svc.request('GET', `/api/cases/${id}/bundle`, { token: cm, headers: { 'accept-encoding': 'identity' } });
    expect(res.status).toBe(200);
    // The body is left unread: the response cannot finish.
    await svc.stop();
    stopped = true;
    await res.body?.cancel().catch(() => undefined);
  } finally {
    if (!stopped) await svc.stop();
  }
}, 90_000); // the service's start, a 30,000-entry bundle stored and a stop with its 5 s close grace: ~8 s on a quiet host
