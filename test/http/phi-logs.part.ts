import { CaptureTransport } from '../support/capture-log';
import { UnrecoverableError } from 'bullmq';
import type { Patient } from 'fhir/r4';
import { UnsupportedFhirVersionError } from '../../src/endpoints/fhir-version';
import { NextLinkPathError } from '../../src/fhir/errors';
import { errorFields, logger, withLogMessageOf } from '../../src/log';
import { ForeignPatientsError } from '../../src/pull/foreign-patient';
import { PagingGuard, pagingLoopError } from '../../src/pull/paging-guard';
import { SourcePatientReviewError, sourcePatientReview } from '../../src/pull/source-patient-standing';
import { SAMPLE_PHI_STRINGS, sampleIntake } from '../support/intake';
import { startTestService, type TestService } from '../support/service';

describe('PHI never reaches a log line', () => {
  let svc: TestService;
  const capture = new CaptureTransport();
  let previousLevel: string;

  beforeAll(async () => {
    previousLevel = logger.level;
    logger.level = 'silly';
    logger.add(capture);
    svc = await startTestService({ LOG_LEVEL: 'silly' });
  });
  afterAll(async () => {
    await svc.stop();
    logger.remove(capture);
    logger.level = previousLevel;
  });

  it('a full intake through the API logs requests, but none of its PHI', async () => {
    const cm = await svc.token('case_manager', 'cm-7');
    const intake = sampleIntake();
    const created = await svc.request('POST', '/api/cases', { token: cm, body: intake, headers: { 'x-request-id': 'phi-check-1' } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };

    // Read it every way, move it along, ask for its FHIR face, and send bad bodies that carry PHI.
    expect((await svc.request('GET', `/api/cases/${id}`, { token: cm })).status).toBe(200);
    expect((await svc.request('GET', '/api/cases?status=submitted&overdue=false', { token: cm })).status).toBe(200);
    expect((await svc.request('GET', `/api/cases/${id}/fhir`, { token: cm })).status).toBe(200);
    expect(
      (await svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to: 'collecting_records', reason: 'Zinnia records requested from Pueblo' } })).status,
    ).toBe(200);
    expect((await svc.request('POST', `/api/cases/${id}/transitions`, { token: cm, body: { to: 'delivered' } })).status).toBe(409);
    const bad = sampleIntake();
    const badBody = { ...bad, patient: { ...bad.patient, birthDate: 'Zinnia Marrowvale 2017-03-14' } };
    expect((await svc.request('POST', '/api/cases', { token: cm, body: badBody })).status).toBe(400);
    expect((await svc.request('POST', '/api/cases', { token: cm, body: '{"patient": "Marrowvale' })).status).toBe(400);
    expect((await svc.request('GET', `/api/cases/not-a-uuid?name=Marrowvale`, { token: cm })).status).toBe(400);

    const output = capture.lines.join('\n');
    // The log is not empty: requests were logged with their ids...
    expect(capture.lines.some((line) => line.includes('"requestId":"phi-check-1"'))).toBe(true);
    expect(capture.lines.some((line) => line.includes(`"caseId":"${id}"`))).toBe(true);
    expect(capture.lines.filter((line) => line.includes('"message":"request"')).length).toBeGreaterThanOrEqual(8);
    // ...and no PHI string, in any case.
    for (const phi of SAMPLE_PHI_STRINGS) {
      expect({ phi, found: output.toLowerCase().includes(phi.toLowerCase()) }).toEqual({ phi, found: false });
    }
  });

  it('redacts values of metadata keys that are not on the allow-list', () => {
    logger.warn('probe', { patientName: 'Marrowvale', caseId: 'c-1', counts: { Observation: 3 } });
    const line = capture.lines.find((l) => l.includes('"message":"probe"')) ?? '';
    expect(JSON.parse(line)).toMatchObject({ patientName: '[redacted]', caseId: 'c-1', counts: { Observation: 3 } });
  });

  it('error messages lose what they quote, even when a quoted name holds quotes itself', () => {
    const fsError = Object.assign(
      new Error("ENOENT: no such file or directory, link '/data/staging/Sean O'Brien DOB 2015-03-02 MRN 448812/IM0001' -> '/data/blobs/ab/cd'"),
      { code: 'ENOENT' },
    );
    const upload = new Error('File "Garcia, Emma "MRN 448812" CT head.pdf" could not be stored; send it again');
    const lone = new Error("can't read Emma Garcia's CT");
    const scrubbed = [fsError, upload, lone].map((e) => errorFields(e).errorMessage);
    for (const phi of ['Brien', '2015-03-02', '448812', 'Garcia', 'Emma', 'CT head']) {
      expect({ phi, found: scrubbed.some((m) => m.includes(phi)) }).toEqual({ phi, found: false });
    }
    // What is not quoted stays: the reader still learns what failed.
    expect(scrubbed[0]).toBe('ENOENT: no such file or directory, link "…"');
    expect(errorFields(fsError).errorCode).toBe('ENOENT');
    expect(scrubbed[1]).toBe('File "…" could not be stored; send it again');
    expect(scrubbed[2]).toBe('can"…"s CT');
    expect(errorFields(new Error("can't open Zinnia Marrowvale.pdf")).errorMessage).toBe('can"…');
    expect(errorFields(new Error('relation "case_bundles" does not exist')).errorMessage).toBe('relation "…" does not exist');
    expect(errorFields(new Error('Key (email)=(zinnia@example.org) already exists.')).errorMessage).toBe('Key (…)=(…) already exists.');
    expect(errorFields(new Error('connect ECONNREFUSED 127.0.0.1:5432')).errorMessage).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  });

  it("logs whole an error whose message is the service's own words (apostrophes and all), and only such an error", () => {
    const emptyPages = new PagingGuard();
    let stopped: unknown;
    try {
      for (let page = 1; page <= 60; page++) emptyPages.admit(page, `https://ehr.example.org/fhir/Observation?page=${page}`, []);
    } catch (err) {
      stopped = err;
    }
    const own = [stopped, pagingLoopError(7, 3), new ForeignPatientsError(['Patient/zinnia-1', 'Patient/zinnia-2']), new UnsupportedFhirVersionError('5.0.0')];
    for (const err of own) {
      if (!(err instanceof Error)) throw new Error('the paging guard did not stop the query');
      expect(err.message).toMatch(/'/); // "the server's paging", "the EHR's administrators", "the server's R4 base URL"
      expect(errorFields(err).errorMessage).toBe(err.message);
    }
    expect(errorFields(own[2]).errorMessage).not.toMatch(/zinnia/);
    // The same words in an error of no such class, or a version that is not a version number, are scrubbed.
    expect(errorFields(new Error(pagingLoopError(7, 3).message)).errorMessage).toBe('the next link of page 7 of this query leads back to page 3: the server"…');
    const odd = new UnsupportedFhirVersionError("5.0.0 (Emma Garcia's test server)");
    expect(errorFields(odd).errorMessage).toBe(
      "the server declares fhirVersion (not a version number) in its CapabilityStatement; this service speaks FHIR 4.0.x (R4) only: register the server's R4 base URL",
    );
    // A queue's UnrecoverableError around it is logged the same (as `pull job failed` logs it).
    const wrapped = withLogMessageOf(new UnrecoverableError(odd.message), odd);
    expect(errorFields(wrapped).errorMessage).toBe(errorFields(odd).errorMessage);
    expect(errorFields(withLogMessageOf(new UnrecoverableError('plain'), new Error("Emma Garcia's"))).errorMessage).toBe('plain');
  });

  it("logs a next link's 404 in the service's words, without the server's text or the link's origin (both stay in the error for the pull's record)", () => {
    const origin = 'https://hapi.internal:8080';
    const err = new NextLinkPathError(404, ['not-found'], "Resource 'Patient/mrn-448812' (Zinnia Marrowvale) is not known", origin, false);
    expect(err.message).toContain('Zinnia Marrowvale');
    expect(err.message).toContain('https://hapi.internal:8080');
    const expected =
      "FHIR server answered 404 (issue codes: not-found) for a next link naming another origin, followed on the endpoint's origin with its path unchanged: " +
      'the link could not be moved: the EHR declares no base of its own (implementation.url), which a path-mapping proxy needs';
    for (const logged of [errorFields(err).errorMessage, errorFields(withLogMessageOf(new UnrecoverableError(err.message), err)).errorMessage]) {
      expect(logged).toBe(expected);
    }
    expect(errorFields(new NextLinkPathError(410, [], 'http-410', origin, true)).errorMessage).toBe(
      "FHIR server answered 410 for a next link naming another origin, followed on the endpoint's origin with its path unchanged: " +
        'the link is not under the base the EHR declares for itself (implementation.url), which a path-mapping proxy needs',
    );
  });

  it("logs a source's review reason without the record's ids, displays and dates (no id at an EHR reaches the log)", () => {
    const merged: Patient = {
      resourceType: 'Patient', id: 'mrn-448812', active: false, meta: { lastUpdated: '2026-05-01T10:00:00Z' },
      link: [{ type: 'replaced-by', other: { reference: 'Patient/mrn-448813' } }, { type: 'replaced-by', other: { display: 'Zinnia Marrowvale' } }],
    };
    const review = sourcePatientReview(merged, { caseId: 'c-1', sourceId: 's-1', baseUrl: 'https://ehr.example.org/fhir' });
    if (!review) throw new Error('the merged record stands');
    // The case manager's reason names them (the source's review, the task's last error) …
    for (const named of ['Patient/mrn-448812', 'Patient/mrn-448813', 'Zinnia Marrowvale', '2026-05-01']) expect(review.reason).toContain(named);
    // … the log does not, wrapped as the pull worker throws it or not.
    const err = new SourcePatientReviewError(review.reason, review.logReason);
    for (const logged of [errorFields(err).errorMessage, errorFields(withLogMessageOf(new UnrecoverableError(err.message), err)).errorMessage]) {
      expect(logged).toBe(
        "The care team's record for this child was merged into another: choose the child's patient there again (POST /api/cases/c-1/sources/s-1/patient); until then this source is not pulled.",
      );
    }
  });

  it("logs only a code shaped like one as an error's code", () => {
    const codeOf = (code: unknown): string | undefined => errorFields(Object.assign(new Error('failed'), { code })).errorCode;
    expect([codeOf('ENOENT'), codeOf(23505), codeOf('ERR_HTTP2_STREAM_CANCEL'), codeOf('invalid_client'), codeOf('1.2-3')]).toEqual(['ENOENT', '23505', 'ERR_HTTP2_STREAM_CANCEL', 'invalid_client', '1.2-3']);
    expect([codeOf('MRN 448812'), codeOf('Zinnia'.padEnd(41, 'x')), codeOf(''), codeOf('Marrowvale\n')]).toEqual(['[redacted]', '[redacted]', '[redacted]', '[redacted]']);
    expect([codeOf(undefined), codeOf({ mrn: '448812' })]).toEqual([undefined, undefined]);
  });

  it('keeps a metadata message, or an error passed as metadata, out of the line (the call\'s own message stays)', () => {
    logger.info('message meta probe', { message: 'Zinnia Marrowvale MRN 448812', caseId: 'c-2' });
    const err = Object.assign(new Error('Zinnia Marrowvale MRN 448812', { cause: new Error('born 2017-03-14') }), { mrn: '448812' });
    logger.error('error meta probe', err);
    logger.child({ jobId: 'j-1' }).warn('child meta probe', { message: 'Zinnia Marrowvale' });
    const lines = capture.lines.filter((l) => /meta probe/.test(l)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.message)).toEqual(['message meta probe', 'error meta probe', 'child meta probe']);
    expect(lines[0]).toMatchObject({ caseId: 'c-2' });
    expect(lines[1]).toMatchObject({ stack: '[redacted]', cause: '[redacted]', mrn: '[redacted]' });
    expect(lines[2]).toMatchObject({ jobId: 'j-1' });
    const output = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const phi of ['Zinnia', 'Marrowvale', '448812', '2017-03-14']) {
      expect({ phi, found: output.includes(phi) }).toEqual({ phi, found: false });
    }
  });
});
