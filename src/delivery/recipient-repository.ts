import type { Queryable } from '../db/database';
import type { PatientSelector } from '../pull/source-repository';

/** Where a case's report goes: an endpoint (the referring physician's EHR) and how to find the child there. */
export interface RecipientRow {
  readonly id: string;
  readonly caseId: string;
  readonly endpointId: string;
  readonly selector: PatientSelector;
  /** The child's Patient id there, once found (exactly one match) or chosen by the case manager. */
  readonly remotePatientId: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Db {
  id: string;
  case_id: string;
  endpoint_id: string;
  selector: PatientSelector;
  remote_patient_id: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const toRow = (r: Db): RecipientRow => ({
  id: r.id,
  caseId: r.case_id,
  endpointId: r.endpoint_id,
  selector: r.selector,
  remotePatientId: r.remote_patient_id,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Adds a recipient; false when the endpoint already is one of the case. */
export async function insertRecipient(
  db: Queryable,
  r: { id: string; caseId: string; endpointId: string; selector: PatientSelector; remotePatientId: string | null; createdBy: string },
): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO case_recipients (id, case_id, endpoint_id, selector, remote_patient_id, created_by) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (case_id, endpoint_id) DO NOTHING`,
    [r.id, r.caseId, r.endpointId, JSON.stringify(r.selector), r.remotePatientId, r.createdBy],
  );
  return result.rowCount === 1;
}

/** A case's recipients, oldest first. */
export async function listRecipients(db: Queryable, caseId: string): Promise<RecipientRow[]> {
  const { rows } = await db.query<Db>('SELECT * FROM case_recipients WHERE case_id = $1 ORDER BY created_at, id', [caseId]);
  return rows.map(toRow);
}

/** A recipient by id; `forUpdate` locks its row (the patient chosen there, serialised with the deliveries writing under it). */
export async function findRecipient(db: Queryable, id: string, forUpdate = false): Promise<RecipientRow | undefined> {
  const { rows } = await db.query<Db>(`SELECT * FROM case_recipients WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/**
 * The recipient's patient on record now, its row locked `FOR SHARE` until the transaction ends: a
 * case manager's choice (`chooseRecipientPatient` locks the row for update) either committed before
 * and is read here, or waits for this transaction and then sees what it left.
 * @returns null when none is on record, undefined when the recipient is gone
 */
export async function lockedRecipientPatient(db: Queryable, id: string): Promise<string | null | undefined> {
  const { rows } = await db.query<{ remote_patient_id: string | null }>('SELECT remote_patient_id FROM case_recipients WHERE id = $1 FOR SHARE', [id]);
  return rows[0]?.remote_patient_id;
}

/**
 * Remembers the Patient id a delivery found at the recipient, only while none is on record: a
 * patient a case manager chose meanwhile is never overwritten. @returns the recipient's patient now
 */
export async function setFoundRecipientPatient(db: Queryable, id: string, remotePatientId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ remote_patient_id: string }>(
    `UPDATE case_recipients SET remote_patient_id = $2, updated_at = now() WHERE id = $1 AND remote_patient_id IS NULL RETURNING remote_patient_id`,
    [id, remotePatientId],
  );
  if (rows[0]) return rows[0].remote_patient_id;
  return (await findRecipient(db, id))?.remotePatientId ?? undefined;
}

/** Remembers the child's Patient id at the recipient (a case manager's choice, checked first). */
export async function setRecipientPatient(db: Queryable, id: string, remotePatientId: string): Promise<void> {
  await db.query('UPDATE case_recipients SET remote_patient_id = $2, updated_at = now() WHERE id = $1', [id, remotePatientId]);
}
