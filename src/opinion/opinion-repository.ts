import type { Queryable } from '../db/database';
import type { QuestionAnswer } from './answers';
import type { OpinionContent, SpecialistIdentity } from './opinion-schema';

/** The stored draft: the body as matched to the family's questions. */
export interface StoredOpinion extends Omit<OpinionContent, 'answers'> {
  readonly answers: QuestionAnswer[];
}

/** The draft of a case's opinion, as stored. */
export interface DraftRow {
  readonly caseId: string;
  readonly content: StoredOpinion;
  readonly specialist: SpecialistIdentity;
  readonly authorSub: string;
  readonly signedVersion: number | null;
  readonly updatedAt: Date;
  /** Bumped by every save (migration 019): the draft's ETag. */
  readonly revision: number;
}

/** A signed version (without the PDF bytes; see {@link readVersionPdf}). */
export interface VersionRow {
  readonly caseId: string;
  readonly version: number;
  readonly content: StoredOpinion;
  readonly specialist: SpecialistIdentity;
  readonly signedBy: string;
  readonly signedAt: Date;
  readonly fhirStatus: 'final' | 'amended';
  readonly pdfSha1Base64: string;
  readonly pdfSha256: string;
  readonly pdfBytes: number;
  /** The case bundle version that was the case record when this version was signed (null: none). */
  readonly bundleVersion: number | null;
}

interface DraftDb {
  case_id: string;
  content: StoredOpinion;
  specialist: SpecialistIdentity;
  author_sub: string;
  signed_version: number | null;
  updated_at: Date;
  revision: number;
}

interface VersionDb {
  case_id: string;
  version: number;
  content: StoredOpinion;
  specialist: SpecialistIdentity;
  signed_by: string;
  signed_at: Date;
  fhir_status: 'final' | 'amended';
  pdf_sha1_base64: string;
  pdf_sha256: string;
  pdf_bytes: number;
  bundle_version: number | null;
}

const toDraft = (r: DraftDb): DraftRow => ({
  caseId: r.case_id,
  content: r.content,
  specialist: r.specialist,
  authorSub: r.author_sub,
  signedVersion: r.signed_version,
  updatedAt: r.updated_at,
  revision: r.revision,
});

const toVersion = (r: VersionDb): VersionRow => ({
  caseId: r.case_id,
  version: r.version,
  content: r.content,
  specialist: r.specialist,
  signedBy: r.signed_by,
  signedAt: r.signed_at,
  fhirStatus: r.fhir_status,
  pdfSha1Base64: r.pdf_sha1_base64,
  pdfSha256: r.pdf_sha256,
  pdfBytes: r.pdf_bytes,
  bundleVersion: r.bundle_version,
});

const VERSION_COLUMNS = 'case_id, version, content, specialist, signed_by, signed_at, fhir_status, pdf_sha1_base64, pdf_sha256, pdf_bytes, bundle_version';

/** Writes the case's draft (a new write makes it unsigned again). */
export async function upsertDraft(db: Queryable, caseId: string, content: StoredOpinion, specialist: SpecialistIdentity, at: Date): Promise<void> {
  await db.query(
    `INSERT INTO opinion_drafts (case_id, content, specialist, author_sub, signed_version, updated_at) VALUES ($1, $2, $3, $4, NULL, $5)
     ON CONFLICT (case_id) DO UPDATE SET content = EXCLUDED.content, specialist = EXCLUDED.specialist, author_sub = EXCLUDED.author_sub,
       signed_version = NULL, updated_at = EXCLUDED.updated_at, revision = opinion_drafts.revision + 1`,
    [caseId, JSON.stringify(content), JSON.stringify(specialist), specialist.sub, at],
  );
}

/** The case's draft; `forUpdate` locks it for the signing transaction. */
export async function findDraft(db: Queryable, caseId: string, forUpdate = false): Promise<DraftRow | undefined> {
  const { rows } = await db.query<DraftDb>(`SELECT * FROM opinion_drafts WHERE case_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [caseId]);
  return rows[0] ? toDraft(rows[0]) : undefined;
}

/** Records which version the draft became. */
export async function markDraftSigned(db: Queryable, caseId: string, version: number): Promise<void> {
  await db.query('UPDATE opinion_drafts SET signed_version = $2 WHERE case_id = $1', [caseId, version]);
}

/** A version to store, with its rendered PDF (its size is the PDF's). */
export type NewVersion = Omit<VersionRow, 'pdfBytes'> & { readonly pdf: Uint8Array };

/** Stores a signed version (the primary key refuses a second version N). */
export async function insertVersion(db: Queryable, v: NewVersion): Promise<void> {
  await db.query(
    `INSERT INTO opinion_versions (case_id, version, content, specialist, signed_by, signed_at, fhir_status, pdf, pdf_sha1_base64, pdf_sha256, pdf_bytes, bundle_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      v.caseId, v.version, JSON.stringify(v.content), JSON.stringify(v.specialist), v.signedBy, v.signedAt, v.fhirStatus, Buffer.from(v.pdf), v.pdfSha1Base64, v.pdfSha256, v.pdf.length,
      v.bundleVersion,
    ],
  );
}

/** Every signed version of the case, oldest first. */
export async function listVersions(db: Queryable, caseId: string): Promise<VersionRow[]> {
  const { rows } = await db.query<VersionDb>(`SELECT ${VERSION_COLUMNS} FROM opinion_versions WHERE case_id = $1 ORDER BY version`, [caseId]);
  return rows.map(toVersion);
}

/** A version (the latest when `version` is omitted). */
export async function findVersion(db: Queryable, caseId: string, version?: number): Promise<VersionRow | undefined> {
  const { rows } = await db.query<VersionDb>(
    `SELECT ${VERSION_COLUMNS} FROM opinion_versions WHERE case_id = $1 ${version === undefined ? '' : 'AND version = $2'} ORDER BY version DESC LIMIT 1`,
    version === undefined ? [caseId] : [caseId, version],
  );
  return rows[0] ? toVersion(rows[0]) : undefined;
}

/** The PDF bytes of a version. */
export async function readVersionPdf(db: Queryable, caseId: string, version: number): Promise<Buffer | undefined> {
  const { rows } = await db.query<{ pdf: Buffer | Uint8Array }>('SELECT pdf FROM opinion_versions WHERE case_id = $1 AND version = $2', [caseId, version]);
  return rows[0] ? Buffer.from(rows[0].pdf) : undefined;
}
