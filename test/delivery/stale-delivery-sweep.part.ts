/**
 * The sweep that re-queues deliveries whose job may be lost (`staleDeliverySweep`, run by the notify
 * worker) visits every stale delivery in turn: 250 deliveries waiting for hours with one
 * `updated_at` (a recipient's outage) no longer hide a lost job behind the first 100. Real
 * PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { insertCase } from '../../src/db/case-repository';
import { createDeliveries, STALE_DELIVERY_BATCH, staleDeliverySweep } from '../../src/delivery/delivery-repository';
import { insertRecipient } from '../../src/delivery/recipient-repository';
import { insertEndpoint } from '../../src/endpoints/endpoint-repository';
import { testDatabaseForFile, type TestDatabase } from '../support/postgres';

let testDb: TestDatabase;
testDatabaseForFile((created) => (testDb = created));
it('goes on where the last sweep stopped, and starts over at the end', async () => {
  const { db } = testDb;
  const caseId = randomUUID();
  const endpointId = randomUUID();
  const recipientId = randomUUID();
  await insertCase(db, { id: caseId, status: 'report_signed', intake: {}, eligibility: {}, quote: {}, createdBy: 'cm', at: new Date() });
  await insertEndpoint(db, {
    id: endpointId, name: 'EHR', baseUrl: 'https://ehr.example.org/fhir', authType: 'none', clientId: null, scope: null, sealedSecret: null,
    maxRequestsPerSecond: 10, maxConcurrency: 2, allowInsecureHttp: false, rebaseNextLinks: false, inboundSubject: null,
  });
  await insertRecipient(db, { id: recipientId, caseId, endpointId, selector: { match: true }, remotePatientId: null, createdBy: 'cm' });
  const total = 2 * STALE_DELIVERY_BATCH + 50;
  // A delivery is of a signed version: versions 1…total (their content does not matter here).
  await db.query(
    `INSERT INTO opinion_versions (case_id, version, content, specialist, signed_by, signed_at, fhir_status, pdf, pdf_sha1_base64, pdf_sha256, pdf_bytes, bundle_version)
     SELECT $1, v, '{}', '{}', 'spec', now(), CASE WHEN v = 1 THEN 'final' ELSE 'amended' END, '\\x25504446', 'x', 'x', 4, NULL FROM generate_series(1, $2::int) AS v`,
    [caseId, total],
  );
  const ids: string[] = [];
  for (let version = 1; version <= total; version += 1) ids.push(...(await createDeliveries(db, caseId, version, [recipientId])));
  // All waiting since the same moment, hours ago.
  await db.query(`UPDATE deliveries SET updated_at = now() - interval '3 hours'`);

  const sweep = staleDeliverySweep();
  const olderThan = new Date(Date.now() - 60_000);
  const batches = [await sweep(db, olderThan), await sweep(db, olderThan), await sweep(db, olderThan)];
  expect(batches.map((b) => b.length)).toEqual([STALE_DELIVERY_BATCH, STALE_DELIVERY_BATCH, 50]);
  expect(new Set(batches.flat().map((d) => d.id))).toEqual(new Set(ids));
  // Past the end: from the start again.
  expect((await sweep(db, olderThan)).map((d) => d.id)).toEqual(batches[0]?.map((d) => d.id));
});
