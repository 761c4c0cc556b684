import type { Intake } from '../cases/intake-schema';
import { findCase } from '../db/case-repository';
import type { Database } from '../db/database';
import { notFound } from '../http/problem';
import type { RawInput, SourceInfo, SourceServerMessage } from '../normalize/types';
import { rawResourceBatches } from './raw-resource-stream';

/** A fetched attachment of a pulled resource, as the blob store knows it. */
export interface FetchedAttachment {
  readonly sourceId: string;
  readonly resourceType: string;
  readonly remoteId: string;
  readonly position: string;
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
  readonly raw: RawInput[];
  readonly attachments: FetchedAttachment[];
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Most severe first, then by code and text (a stable order: the bundle is deterministic). */
function sortedMessages(messages: readonly SourceServerMessage[]): SourceServerMessage[] {
  const rank = (s: string): number => ['fatal', 'error', 'warning', 'information'].indexOf(s) >>> 0;
  return [...messages].sort((a, b) => rank(a.severity) - rank(b.severity) || cmp(a.code, b.code) || cmp(a.text, b.text));
}

/** Every raw resource of the case, read in batches (see `raw-resource-stream.ts`), in key order. */
async function readAllRaw(db: Database, caseId: string): Promise<RawInput[]> {
  const raw: RawInput[] = [];
  for await (const batch of rawResourceBatches(db, caseId)) for (const r of batch) raw.push(r);
  return raw;
}

/**
 * Everything assembly derives from, read from the raw store (PostgreSQL) in a stable order. The raw
 * resources are freshly parsed objects owned by the caller: assembly normalizes them in place
 * (`consumeRaw`), so the case is held once, not as raw plus normalized copies.
 */
export async function loadAssemblyInput(db: Database, caseId: string): Promise<AssemblyInput> {
  const record = await findCase(db, caseId);
  if (!record) throw notFound(`Case ${caseId}`);
  const [sources, raw, attachments] = await Promise.all([
    db.query<{
      id: string; base_url: string; name: string; remote_patient_id: string | null; pull_ids: string[] | null; last_fetched: Date | null; removed_reason: string | null;
      server_messages: SourceServerMessage[] | null;
    }>(
      `SELECT s.id, e.base_url, e.name, s.remote_patient_id, CASE WHEN s.state = 'removed' THEN s.removed_reason END AS removed_reason,
              (SELECT jsonb_agg(DISTINCT jsonb_build_object('severity', m->>'severity', 'code', m->>'code', 'text', m->>'text'))
                 FROM pulls p JOIN pull_tasks t ON t.pull_id = p.id CROSS JOIN LATERAL jsonb_array_elements(t.server_messages) m
                 WHERE p.case_id = s.case_id AND t.source_id = s.id) AS server_messages,
              (SELECT array_agg(DISTINCT r.pull_id::text) FROM raw_resources r WHERE r.case_id = s.case_id AND r.source_id = s.id) AS pull_ids,
              (SELECT max(r.fetched_at) FROM raw_resources r WHERE r.case_id = s.case_id AND r.source_id = s.id) AS last_fetched
       FROM case_sources s JOIN endpoints e ON e.id = s.endpoint_id
       WHERE s.case_id = $1 ORDER BY s.created_at, s.id`,
      [caseId],
    ),
    readAllRaw(db, caseId),
    db.query<{ source_id: string; resource_type: string; remote_id: string; position: string; state: FetchedAttachment['state']; sha1_base64: string | null; size: number | null; integrity: string | null; error: string | null }>(
      `SELECT source_id, resource_type, remote_id, position, state, sha1_base64, size, integrity, error FROM attachments
       WHERE case_id = $1 ORDER BY source_id, resource_type, remote_id, position`,
      [caseId],
    ),
  ]);
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
      ...(s.server_messages && s.server_messages.length > 0 ? { serverMessages: sortedMessages(s.server_messages) } : {}),
    })),
    raw,
    attachments: attachments.rows.map((a) => ({
      sourceId: a.source_id,
      resourceType: a.resource_type,
      remoteId: a.remote_id,
      position: a.position,
      state: a.state,
      sha1Base64: a.sha1_base64,
      size: a.size,
      integrity: a.integrity,
      error: a.error,
    })),
  };
}
