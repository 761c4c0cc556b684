import type { Bundle, Consent } from 'fhir/r4';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

/**
 * An ended case's Consent ends when the case did (`provision.period.end`), read from the case's
 * timeline: a later change to the case row of another kind does not move it.
 */
let svc: TestService;
startForFile(() => startTestService(), (started) => (svc = started));

it('ends the consent of a cancelled case at its cancellation, not at the row’s last update', async () => {
  const cm = await svc.token('case_manager');
  const { id } = (await (await svc.request('POST', '/api/cases', { token: cm, body: sampleIntake() })).json()) as { id: string };
  const cancelled = await svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'The family withdrew the request.' } });
  expect(cancelled.status).toBe(200);
  const { rows } = await svc.service.db.query<{ at: Date }>(`SELECT at FROM case_events WHERE case_id = $1 AND type = 'transition' AND to_status = 'cancelled'`, [id]);
  const cancelledAt = rows[0]?.at;
  expect(cancelledAt).toBeInstanceOf(Date);
  // Something else touches the row a day later (an add-on, a quote…).
  await svc.service.db.query(`UPDATE cases SET updated_at = updated_at + interval '1 day' WHERE id = $1`, [id]);

  const face = (await (await svc.request('GET', `/api/cases/${id}/fhir`, { token: cm })).json()) as Bundle;
  const consent = face.entry?.map((e) => e.resource).find((r): r is Consent => r?.resourceType === 'Consent');
  expect(consent?.status).toBe('inactive');
  expect(consent?.provision?.period?.end).toBe(cancelledAt?.toISOString());
});
