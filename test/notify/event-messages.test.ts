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

  it("names an SLA miss's due day as the program counts it, and the instant where that is all there is", () => {
    expect(eventMessage('sla.target_missed', { caseId, dueAt: '2026-01-21T04:59:59Z', dueDay: '2026-01-20', timeZone: 'America/New_York' })).toBe(
      'The report is past its 5-business-day target (due 2026-01-20, end of day America/New_York).',
    );
    expect(eventMessage('sla.target_missed', { caseId, dueAt: '2026-01-21T04:59:59Z' })).toBe('The report is past its 5-business-day target (due 2026-01-21T04:59:59Z).');
  });

  it('tells who can enable a disabled webhook subscriber again, and how', () => {
    expect(eventMessage('webhook.disabled', { webhookId: 'w-1' })).toBe(
      'Webhook subscriber w-1 kept failing and was disabled: it gets no events until an admin enables it again (POST /api/webhooks/w-1/enable) once it answers.',
    );
  });
});
