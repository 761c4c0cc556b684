import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database';
import { insertUploadFiles, uploadsWaitingForIngest } from '../../src/uploads/upload-repository';
import { testDatabaseForFile } from '../support/postgres';
import { insertTestCase } from '../support/pull-task';

/**
 * What the reconciler re-queues every 30 s: uploads whose ingestion has not ended, of the cases under
 * way only — a case that ended (closed, cancelled, ineligible) has nothing assembled any more, and
 * its uploads, like every upload ever made, are not read again at every run.
 */
let db: Database;
testDatabaseForFile((t) => (db = t.db));

async function caseWithUnreadUpload(status: string): Promise<{ caseId: string; uploadId: string }> {
  const caseId = randomUUID();
  await insertTestCase(db, caseId, status);
  const uploadId = randomUUID();
  await insertUploadFiles(db, [{ id: randomUUID(), caseId, uploadId, position: 0, fileName: 'letter.pdf', kind: 'pdf', size: 10, uploadedBy: 'upload-token:x' }]);
  return { caseId, uploadId };
}

it('lists the unread uploads of cases under way, not those of cases that ended', async () => {
  const open = await caseWithUnreadUpload('collecting_records');
  const inReview = await caseWithUnreadUpload('in_review');
  const ended = await Promise.all(['closed', 'cancelled', 'ineligible'].map(caseWithUnreadUpload));
  const waiting = (await uploadsWaitingForIngest(db)).map((u) => u.uploadId);
  expect(waiting).toEqual(expect.arrayContaining([open.uploadId, inReview.uploadId]));
  for (const e of ended) expect(waiting).not.toContain(e.uploadId);
});
