/**
 * A specialist's worklist: the cases currently assigned to the specialist the directory binds to the
 * caller's token subject (`userSub`), the nearest SLA target first, each with where its record and
 * opinion stand — the current bundle version, the one this specialist last opened (from the access
 * log), the draft, the last signed version and the record it rests on, and whether records arrived
 * since (`newRecordsSinceLastOpened`, `newRecordsSinceOpinion`), with the links to read them.
 * A specialist deactivated in the directory is refused (403), as on every case route.
 * @packageDocumentation
 */
import { listCaseSummaries, type CaseServiceDeps } from '../cases/case-service';
import type { Queryable } from '../db/database';
import { INACTIVE_SPECIALIST_ACCOUNT } from '../http/case-access';
import { HttpProblem } from '../http/problem';
import { displayName } from './practitioner';
import { findSpecialistBySubject } from './specialist-repository';

/** What the worklist is filtered and paged by. */
export interface WorklistQuery {
  readonly status?: string[];
  readonly limit: number;
  readonly offset: number;
}

interface ProgressRow {
  id: string;
  bundle_version: number | null;
  bundle_at: Date | null;
  opinion_version: number | null;
  opinion_bundle_version: number | null;
  draft_at: Date | null;
  draft_signed_version: number | null;
  opened_version: number | null;
}

/**
 * Per case: its latest bundle version, the highest one `subject` opened (the access log's served
 * versions), its last signed opinion version (and record), its draft.
 */
async function progressOf(db: Queryable, caseIds: readonly string[], subject: string): Promise<Map<string, ProgressRow>> {
  if (caseIds.length === 0) return new Map();
  const { rows } = await db.query<ProgressRow>(
    `SELECT c.id, b.version AS bundle_version, b.created_at AS bundle_at, o.version AS opinion_version, o.bundle_version AS opinion_bundle_version,
            d.updated_at AS draft_at, d.signed_version AS draft_signed_version,
            (SELECT max(a.bundle_version) FROM audit_log a WHERE a.case_id = c.id AND a.actor_sub = $2) AS opened_version
     FROM unnest($1::uuid[]) AS c(id)
     LEFT JOIN LATERAL (SELECT version, created_at FROM case_bundles WHERE case_id = c.id ORDER BY version DESC LIMIT 1) b ON true
     LEFT JOIN LATERAL (SELECT version, bundle_version FROM opinion_versions WHERE case_id = c.id ORDER BY version DESC LIMIT 1) o ON true
     LEFT JOIN opinion_drafts d ON d.case_id = c.id`,
    [caseIds, subject],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * The worklist of the specialist bound to `subject`; `specialist: null` when none is.
 * @throws HttpProblem 403 when the specialist bound to `subject` is inactive
 */
export async function specialistWorklist(deps: CaseServiceDeps, subject: string, query: WorklistQuery) {
  const specialist = await findSpecialistBySubject(deps.db, subject);
  if (specialist && !specialist.active) throw new HttpProblem(403, 'Forbidden', INACTIVE_SPECIALIST_ACCOUNT);
  if (!specialist) {
    return {
      specialist: null,
      detail: 'No specialist in the directory is bound to this sign-in: an admin sets the specialist\'s userSub (PATCH /api/specialists/:id) to its token subject.',
      total: 0,
      limit: query.limit,
      offset: query.offset,
      items: [],
    };
  }
  const list = await listCaseSummaries(deps, { status: query.status, limit: query.limit, offset: query.offset }, { assignedToSubject: subject, order: 'sla' });
  const progress = await progressOf(deps.db, list.items.map((i) => i.id), subject);
  return {
    specialist: { id: specialist.id, npi: specialist.npi, displayName: displayName(specialist) },
    total: list.total,
    limit: list.limit,
    offset: list.offset,
    items: list.items.map((item) => {
      const p = progress.get(item.id);
      const base = `/api/cases/${item.id}`;
      const bundleVersion = p?.bundle_version ?? null;
      const signedOn = p?.opinion_bundle_version ?? null;
      const opened = p?.opened_version ?? null;
      /** Whether the current record is newer than version `v` (a version that exists). */
      const newerThan = (v: number | null): boolean => v !== null && bundleVersion !== null && bundleVersion > v;
      return {
        ...item,
        records: bundleVersion === null ? null : { bundleVersion, assembledAt: p?.bundle_at?.toISOString() ?? null, lastOpenedVersion: opened },
        // A record this specialist has not opened yet: never opened, or a newer version since.
        newRecordsSinceLastOpened: bundleVersion !== null && (opened === null || newerThan(opened)),
        opinion: {
          draftSavedAt: p?.draft_at?.toISOString() ?? null,
          unsignedChanges: p?.draft_at != null && p.draft_signed_version === null,
          signedVersion: p?.opinion_version ?? null,
          signedOnBundleVersion: signedOn,
        },
        // Records assembled after the last signature: the opinion may need an amendment.
        newRecordsSinceOpinion: newerThan(signedOn),
        links: {
          case: base,
          summary: `${base}/bundle/summary`,
          // The readable record with what arrived since this specialist last opened it, shown first.
          ...(newerThan(opened) ? { summarySinceLastOpened: `${base}/bundle/summary?since=${opened}` } : {}),
          bundle: `${base}/bundle`,
          ...(newerThan(signedOn) ? { changes: `${base}/bundle/changes?from=${signedOn}&to=${bundleVersion}` } : {}),
        },
      };
    }),
  };
}
