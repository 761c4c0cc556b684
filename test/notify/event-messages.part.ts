import { eventMessage } from '../../src/notify/events';

/** What a case manager reads: accurate, and naming what to do. */
describe('eventMessage', () => {
  const caseId = '6a0f1b52-8c3d-4e5f-9a1b-2c3d4e5f6a7b';

  it('says where a signed opinion goes, or that it has nowhere to go yet', () => {
    expect(eventMessage('opinion.signed', { caseId, version: 1, recipients: 2 })).toMatch(/delivery to the referring physician's EHR has started/);
    expect(eventMessage('opinion.signed', { caseId, version: 1, recipients: 0 })).toBe(
      `The opinion was signed (version 1), but the case has no recipient: add the referring physician's EHR (POST /api/cases/${caseId}/recipients) and it is delivered at once.`,
    );
  });

  it('tells why a delivery waits for review: an earlier version that may be in the chart, a record merged away, or the patient not found once', () => {
    expect(eventMessage('delivery.needs_review', { caseId, version: 2, earlierInDoubt: [1] })).toMatch(/version 1 may already be in the child's chart .* could not confirm/);
    expect(eventMessage('delivery.needs_review', { caseId, version: 2, patientOnRecord: true })).toMatch(/merged into another, made inactive/);
    expect(eventMessage('delivery.needs_review', { caseId, version: 1 })).toMatch(/not found exactly once/);
  });

  it("names an SLA miss's due day as the program counts it, and the instant where that is all there is", () => {
    expect(eventMessage('sla.target_missed', { caseId, dueAt: '2026-01-21T04:59:59Z', dueDay: '2026-01-20', timeZone: 'America/New_York' })).toBe(
      'The report is past its 5-business-day target (due 2026-01-20, end of day America/New_York).',
    );
    expect(eventMessage('sla.target_missed', { caseId, dueAt: '2026-01-21T04:59:59Z' })).toBe('The report is past its 5-business-day target (due 2026-01-21T04:59:59Z).');
  });

  it("says who can act on new records: the case's specialist, or, when that specialist was deactivated or the case has none, a new one to give it to", () => {
    const updated = { caseId, version: 3, trigger: 'rebuild', status: 'delivered', opinionVersion: 1, opinionBundleVersion: 2 };
    expect(eventMessage('records.updated', { ...updated, specialist: 'active' })).toMatch(/Opinion version 1 was signed on bundle version 2: the specialist should review what is new and amend it if needed\.$/);
    // Older events have no `specialist`: as before.
    expect(eventMessage('records.updated', updated)).toMatch(/the specialist should review what is new and amend it if needed\.$/);
    expect(eventMessage('records.updated', { ...updated, specialist: 'inactive' })).toMatch(
      new RegExp(`Opinion version 1 was signed on bundle version 2: its specialist was deactivated: give it to one \\(PUT /api/cases/${caseId}/assignment\\) to review what is new and amend it if needed\\.$`),
    );
    expect(eventMessage('records.updated', { caseId, version: 2, trigger: 'rebuild', status: 'in_review', specialist: 'none' })).toBe(
      `The case records changed while the case is in_review: the case bundle was assembled again (version 2), after a rebuild. But the case has no specialist: give it to one (PUT /api/cases/${caseId}/assignment) to review what is new.`,
    );
  });

  it("tells a pull's sources in review apart from failed ones: choosing the patient again helps them, retrying does not", () => {
    expect(eventMessage('pull.partial', { caseId, pullId: 'p', failedSourceIds: ['a', 'b'] })).toBe('The record pull ended partial: 2 sources could not be pulled. Check the pull and retry it.');
    expect(eventMessage('pull.partial', { caseId, pullId: 'p', failedSourceIds: ['a'], reviewSourceIds: ['a'] })).toBe(
      "The record pull ended partial: 1 source could not be pulled. One source needs review: the care team merged or deactivated the child's record there " +
        `(POST /api/cases/${caseId}/sources/{sourceId}/patient to choose the child's patient again). Choose the patient there, then pull again.`,
    );
    // Some failed for other reasons too: retrying is still the advice for those.
    expect(eventMessage('pull.partial', { caseId, failedSourceIds: ['a', 'b'], reviewSourceIds: ['a'] })).toMatch(/One source needs review: .* Check the pull and retry it\.$/);
    expect(eventMessage('pull.failed', { caseId, failedSourceIds: ['a', 'b'], reviewSourceIds: ['a', 'b'] })).toMatch(
      /^The record pull failed: no source could be pulled\. 2 sources need review: .* Choose the patient there, then pull again\.$/,
    );
    expect(eventMessage('pull.failed', { caseId, failedSourceIds: ['a'] })).toBe('The record pull failed: no source could be pulled. Check the sources and endpoints, then retry it.');
  });

  it('tells the case manager a case waits for a specialist, the route that gives it one, and what its SLA clock does meanwhile', () => {
    const released = { caseId, status: 'in_review', previousAssignmentId: 'a-1', reason: 'specialist deactivated', trigger: 'specialist-deactivated' };
    expect(eventMessage('case.awaiting_assignment', { ...released, slaClock: 'running' })).toBe(
      "The case's specialist was deactivated and no other active specialist fits: the case (in_review) has no specialist and waits for you. " +
        `Give it to one: PUT /api/cases/${caseId}/assignment with {specialistId} (or {match: true} once a fitting specialist is active) and a reason. ` +
        'Its SLA clock keeps running meanwhile.',
    );
    // Paused while the family's information is awaited: it runs again once that is answered, specialist or not.
    expect(eventMessage('case.awaiting_assignment', { ...released, status: 'awaiting_information', slaClock: 'paused' })).toMatch(
      /the case \(awaiting_information\) has no specialist .*PUT \/api\/cases\/6a0f1b52-8c3d-4e5f-9a1b-2c3d4e5f6a7b\/assignment .*Its SLA clock is paused while the family's information is awaited, and runs again once it is answered, specialist or not\.$/,
    );
    // A signed report reopened for correction whose author was deactivated: its clock stopped at the first signature.
    expect(eventMessage('case.awaiting_assignment', { ...released, trigger: 'report-reopened', slaClock: 'stopped' })).toBe(
      "The signed report was reopened for correction, but its specialist was deactivated: no specialist can amend it, and the case (in_review) waits for you. " +
        `Give it to one: PUT /api/cases/${caseId}/assignment with {specialistId} (or {match: true} once a fitting specialist is active) and a reason. ` +
        'Its SLA clock stopped at the first signature and stays stopped, but the referring physician waits for the correction.',
    );
    // Without the state (an older event), it still names the route and the running clock.
    expect(eventMessage('case.awaiting_assignment', { caseId })).toMatch(/PUT \/api\/cases\/6a0f1b52-8c3d-4e5f-9a1b-2c3d4e5f6a7b\/assignment .*Its SLA clock keeps running meanwhile\.$/);
  });

  it('tells who can enable a disabled webhook subscriber again, and how', () => {
    expect(eventMessage('webhook.disabled', { webhookId: 'w-1' })).toBe(
      'Webhook subscriber w-1 kept failing and was disabled: it gets no events until an admin enables it again (POST /api/webhooks/w-1/enable) once it answers.',
    );
  });
});
