import type { Intake } from '../cases/intake-schema';
import { findCase } from '../db/case-repository';
import type { Database } from '../db/database';
import { notFound } from '../http/problem';
import type { RawInput, SourceInfo } from '../normalize/types';
import { notGrantedTypesBySource } from '../pull/not-granted';
import { serverMessagesBySource } from '../pull/source-server-messages';
import { attachmentUrlInBundle } from './attachment-hashes';
import type { RawText } from './build-assembly';
import { readRawResources } from './raw-resource-stream';

/**
 * A fetched attachment of a pulled resource, as the blob store knows it. A resource's position may
 * have several (https://hl7.org/fhir/R4/datatypes.html#Attachment): one per URL or inline data its
 * versions carried there.
 */
export interface FetchedAttachment {
  readonly sourceId: string;
  readonly resourceType: string;
  readonly remoteId: string;
  readonly position: string;
  /** The URL it was fetched from, as the resource carried it (null: inline data). */
  readonly url: string | null;
  /** That URL as the bundle writes it when it points at a resource of the source in the bundle (`attachmentUrlInBundle`). */
  readonly urlInBundle: string | null;
  readonly state: 'pending' | 'fetched' | 'failed';
  readonly sha1Base64: string | null;
  readonly size: number | null;
  readonly integrity: string | null;
  readonly error: string | null;
}

export interface AssemblyInput {
  readonly caseId: string;
  readonly intake: Intake;
  readonly sources: SourceInfo[];
  /** Resources built in code (family uploads: `withUploads`). */
  readonly built: RawInput[];
  readonly attachments: FetchedAttachment[];
}

/**
 * Everything assembly derives from, read from the raw store (PostgreSQL); the sources and attachments
 * in a stable order. The raw resources come as their stored JSON text, batch by batch and in no
 * particular order (`raw-resource-stream.ts`), to `onRaw` (which sends them to the assembly thread,
 * where they are parsed into objects it owns and normalized in place): this thread never holds the
 * whole case.
 *
 * The sources are read under a share lock: a source change still being committed (removed, or
 * pointed at another child) is waited for, so an assembly that began reading after the change took
 * its place in the read order sees it (`source-changes.ts`).
 */
export async function loadAssemblyInput(db: Database, caseId: string, onRaw: (batch: RawText[]) => void | Promise<void>): Promise<AssemblyInput> {
  const record = await findCase(db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  const [sources, , attachments, serverMessages, notGranted] = await Promise.all([
    db.query<{
      id: string; base_url: string; name: string; remote_patient_id: string | null; pull_ids: string[] | null; last_fetched: Date | null; removed_reason: string | null;
    }>(
      `SELECT s.id, e.base_url, e.name, s.remote_patient_id, CASE WHEN s.state = 'removed' THEN s.removed_reason END AS removed_reason,
              (SELECT array_agg(DISTINCT r.pull_id::text) FROM raw_resources r WHERE r.case_id = s.case_id AND r.source_id = s.id) AS pull_ids,
              (SELECT max(r.fetched_at) FROM raw_resources r WHERE r.case_id = s.case_id AND r.source_id = s.id) AS last_fetched
       FROM case_sources s JOIN endpoints e ON e.id = s.endpoint_id
       WHERE s.case_id = $1 ORDER BY s.created_at, s.id
       FOR SHARE OF s`,
      [caseId],
    ),
    readRawResources(db, caseId, onRaw),
    db.query<AttachmentDbRow>(
      `SELECT source_id, resource_type, remote_id, position, url, state, sha1_base64, size, integrity, error FROM attachments
       WHERE case_id = $1 ORDER BY source_id, resource_type, remote_id, position, url, data_sha256`,
      [caseId],
    ),
    serverMessagesBySource(db, caseId),
    notGrantedTypesBySource(db, caseId),
  ]);
  const baseUrls = new Map(sources.rows.map((s) => [s.id, s.base_url]));
  return {
    caseId,
    intake: record.intake as Intake,
    sources: sources.rows.map((s) => ({
      sourceId: s.id,
      baseUrl: s.base_url,
      name: s.name,
      origin: 'local-ehr' as const,
      ...(s.remote_patient_id ? { remotePatientId: s.remote_patient_id } : {}),
      pullIds: [...(s.pull_ids ?? [])].sort(),
      ...(s.last_fetched ? { lastFetchedAt: s.last_fetched.toISOString() } : {}),
      ...(s.removed_reason !== null ? { removedReason: s.removed_reason } : {}),
      ...(serverMessages.has(s.id) ? { serverMessages: serverMessages.get(s.id) ?? [] } : {}),
      ...(notGranted.has(s.id) ? { notGrantedTypes: notGranted.get(s.id) ?? [] } : {}),
    })),
    built: [],
    attachments: attachments.rows.map((a) => toFetchedAttachment(a, baseUrls.get(a.source_id))),
  };
}

interface AttachmentDbRow {
  source_id: string;
  resource_type: string;
  remote_id: string;
  position: string;
  url: string | null;
  state: FetchedAttachment['state'];
  sha1_base64: string | null;
  size: number | null;
  integrity: string | null;
  error: string | null;
}

function toFetchedAttachment(a: AttachmentDbRow, sourceBaseUrl: string | undefined): FetchedAttachment {
  return {
    sourceId: a.source_id,
    resourceType: a.resource_type,
    remoteId: a.remote_id,
    position: a.position,
    url: a.url,
    urlInBundle: a.url !== null && sourceBaseUrl !== undefined ? attachmentUrlInBundle(a.url, sourceBaseUrl) ?? null : null,
    state: a.state,
    sha1Base64: a.sha1_base64,
    size: a.size,
    integrity: a.integrity,
    error: a.error,
  };
}
