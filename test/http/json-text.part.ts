import { isUnstorableText, unstorableTextAt } from '../../src/http/json-text';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

describe('unstorableTextAt', () => {
  it('finds NUL and unpaired surrogates in values and keys, and names where', () => {
    expect(isUnstorableText('a\u0000b')).toBe(true);
    expect(isUnstorableText('a\ud800b')).toBe(true);
    expect(isUnstorableText('a\udc00')).toBe(true);
    expect(isUnstorableText('growth 👍 Zoë Ångström')).toBe(false);
    expect(unstorableTextAt({ a: [1, 'ok', { b: 'x\u0000' }] })).toEqual(['a', 2, 'b']);
    expect(unstorableTextAt({ ok: 'y', ['k\ud800']: 1 })).toEqual(['k\ud800']);
    expect(unstorableTextAt(['\udfff'])).toEqual([0]);
    expect(unstorableTextAt(sampleIntake())).toBeUndefined();
  });
});

describe('text the database cannot store is a 400 naming the field, not a 500', () => {
  let svc: TestService;
  startForFile(() => startTestService(), (started) => (svc = started));

  it('in a body, anywhere in it; in a query; and as an OperationOutcome on a FHIR route', async () => {
    const cm = await svc.token('case_manager');
    const intake = sampleIntake();
    const nul = await svc.request('POST', '/api/cases', { token: cm, body: { ...intake, history: 'abc\u0000def' } });
    expect(nul.status).toBe(400);
    expect(await nul.json()).toMatchObject({ errors: [{ field: 'history', pointer: '#/history' }] });
    const surrogate = await svc.request('POST', '/api/cases', { token: cm, body: { ...intake, patient: { ...intake.patient, name: { ...intake.patient.name, given: ['\ud800'] } } } });
    expect(surrogate.status).toBe(400);
    expect(await surrogate.json()).toMatchObject({ errors: [{ field: 'patient.name.given.0' }] });

    // Real text with characters outside the BMP is fine.
    const created = await svc.request('POST', '/api/cases', { token: cm, body: { ...intake, history: 'Growth chart 📈 from Zoë' } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    const reason = await svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to: 'cancelled', reason: 'x\u0000y' } });
    expect(reason.status).toBe(400);
    expect(await reason.json()).toMatchObject({ errors: [{ field: 'reason' }] });
    const { rows } = await svc.service.db.query<{ status: string }>('SELECT status FROM cases WHERE id = $1', [id]);
    expect(rows[0]?.status).not.toBe('cancelled');

    const query = await svc.request('GET', '/api/cases?status=%00', { token: cm });
    expect(query.status).toBe(400);
    expect(await query.json()).toMatchObject({ errors: [{ field: 'query.status' }] });

    const fhir = await svc.request('GET', `/api/cases/${id}/bundle?version=1%00`, { token: cm });
    expect(fhir.status).toBe(400);
    expect(fhir.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(await fhir.json()).toMatchObject({ resourceType: 'OperationOutcome' });
  });
});
