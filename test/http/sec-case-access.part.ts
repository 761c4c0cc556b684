import { startForFile } from '../support/for-file';
import { startReviewService, type ReviewClient } from '../support/review-case';
import type { TestService } from '../support/service';

/**
 * Case access of specialists after a reassignment, in the default SPECIALIST_CASE_ACCESS mode
 * (`unless-assigned-elsewhere`). README (`PUT /api/cases/:id/assignment`): "the previous specialist
 * loses access"; ARCHITECTURE: "access, worklists and authorship follow the current assignment, so
 * the previous specialist no longer reads the case". Real service, PostgreSQL and Redis.
 */
const NEURO = '2084N0402X';

let svc: TestService;
let cm: ReviewClient;
let admin: string;
startForFile(() => startReviewService('sec-access'), (s) => ({ svc, cm, admin } = s));

describe('default mode: a case taken from a bound specialist and given to one without a bound subject', () => {
  it('is no longer open to the previous specialist (nor to any other bound one), but stays open to unbound specialist tokens', async () => {
    const away = await cm.addSpecialist(admin, 'SecAway', [NEURO], 'dr-sec-away');
    await cm.addSpecialist(admin, 'SecBystander', [NEURO], 'dr-sec-bystander');
    const cover = await cm.addSpecialist(admin, 'SecCover', [NEURO]);
    const id = await cm.assignedCase(away);
    const previous = await svc.token('specialist', 'dr-sec-away');
    expect((await svc.request('GET', `/api/cases/${id}`, { token: previous })).status).toBe(200);

    const moved = await cm.json('PUT', `/api/cases/${id}/assignment`, { specialistId: cover, reason: 'Conflict of interest' });
    expect(moved.status).toBe(200);

    // The previous specialist (bound to another directory entry) reads nothing of the case any more:
    // not the case, its record, its uploads or its opinion.
    for (const route of [`/api/cases/${id}`, `/api/cases/${id}/bundle`, `/api/cases/${id}/bundle/summary`, `/api/cases/${id}/opinion`, `/api/cases/${id}/uploads`, `/api/cases/${id}/fhir`]) {
      const res = await svc.request('GET', route, { token: previous });
      expect({ route, status: res.status }).toEqual({ route, status: 403 });
    }
    // Nor does another specialist the directory binds to someone else.
    expect((await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-sec-bystander') })).status).toBe(403);
    // The assigned specialist has no bound subject: specialist tokens the directory binds to nobody
    // still open it (that is how the unbound specialist signs in), and staff are not limited.
    expect((await svc.request('GET', `/api/cases/${id}`, { token: await svc.token('specialist', 'dr-sec-unbound') })).status).toBe(200);
    expect((await svc.request('GET', `/api/cases/${id}`, { token: admin })).status).toBe(200);
  });
});
