/**
 * A transfer-of-care request racing the end of the family portal's access, black-box against the
 * real service, PostgreSQL and Redis: a cancel of the case (which deletes its upload tokens) or the
 * revocation of the portal's upload token, held uncommitted in a second connection until the
 * request waits for the rows it holds, then committed. The request is refused and nothing is
 * recorded: no transfer request, no timeline event, no `transfer.requested` event.
 */
import { openCaseIn } from '../support/opinion-case';
import { whileRowsHeld } from '../support/held-rows';
import { startTestService, type TestService } from '../support/service';

let svc: TestService;
let cm: string;

beforeAll(async () => {
  svc = await startTestService();
  cm = await svc.token('case_manager', 'cm-transfer-race');
});
afterAll(async () => {
  await svc.stop();
});

const BODY = { reason: 'The family moved closer to the hospital' };

/** Sends the transfer request while `statements` hold their rows ({@link whileRowsHeld}); answers its status. */
async function whileHeld(statements: [string, unknown[]][], pattern: string, token: string, caseId: string): Promise<number> {
  const answer = await whileRowsHeld(svc.service.db, statements, pattern, () => svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token, body: BODY }), 10_000);
  return answer.status;
}

/** A case in review with an upload token for its family portal. */
async function caseWithPortal(): Promise<{ caseId: string; token: string; tokenId: string }> {
  const caseId = await openCaseIn(svc, cm, 'in_review');
  const res = await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm });
  expect(res.status).toBe(201);
  const { token, tokenId } = (await res.json()) as { token: string; tokenId: string };
  return { caseId, token, tokenId };
}

/** What a transfer request records: its rows, timeline events and outbox events for the case. */
async function recorded(caseId: string): Promise<{ requests: number; events: number; outbox: number }> {
  const { rows } = await svc.service.db.query<{ requests: number; events: number; outbox: number }>(
    `SELECT (SELECT count(*)::int FROM transfer_requests WHERE case_id = $1) AS requests,
            (SELECT count(*)::int FROM case_events WHERE case_id = $1 AND type = 'transfer_requested') AS events,
            (SELECT count(*)::int FROM outbox WHERE case_id = $1 AND type = 'transfer.requested') AS outbox`,
    [caseId],
  );
  return rows[0] as { requests: number; events: number; outbox: number };
}

const NOTHING = { requests: 0, events: 0, outbox: 0 };

it('refuses (409) a transfer request from the portal when the case is cancelled meanwhile', async () => {
  const { caseId, token } = await caseWithPortal();
  // The cancel's transaction, as `transitionCase` writes it: the case row locked, the status changed, the portal's tokens deleted.
  const status = await whileHeld(
    [
      ['SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [caseId]],
      ["UPDATE cases SET status = 'cancelled', revision = revision + 1 WHERE id = $1", [caseId]],
      ['DELETE FROM upload_tokens WHERE case_id = $1', [caseId]],
    ],
    '%FROM cases%FOR NO KEY UPDATE%',
    token,
    caseId,
  );
  expect(status).toBe(409);
  expect(await recorded(caseId)).toEqual(NOTHING);
});

it("refuses (409) a case manager's transfer request when the case is cancelled meanwhile", async () => {
  const caseId = await openCaseIn(svc, cm, 'assigned');
  const status = await whileHeld(
    [
      ['SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE', [caseId]],
      ["UPDATE cases SET status = 'cancelled', revision = revision + 1 WHERE id = $1", [caseId]],
    ],
    '%FROM cases%FOR NO KEY UPDATE%',
    cm,
    caseId,
  );
  expect(status).toBe(409);
  expect(await recorded(caseId)).toEqual(NOTHING);
});

it('refuses (401) a transfer request whose upload token is revoked meanwhile, and takes one with a token still valid', async () => {
  const { caseId, token, tokenId } = await caseWithPortal();
  // The revocation, as `revokeUploadToken` deletes it.
  const status = await whileHeld([['DELETE FROM upload_tokens WHERE id = $1 AND case_id = $2', [tokenId, caseId]]], '%upload_tokens%FOR SHARE%', token, caseId);
  expect(status).toBe(401);
  expect(await recorded(caseId)).toEqual(NOTHING);

  const issued = (await (await svc.request('POST', `/api/cases/${caseId}/upload-token`, { token: cm })).json()) as { token: string };
  expect((await svc.request('POST', `/api/cases/${caseId}/transfer-request`, { token: issued.token, body: BODY })).status).toBe(201);
  expect(await recorded(caseId)).toEqual({ requests: 1, events: 1, outbox: 1 });
});
