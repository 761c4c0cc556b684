/**
 * What each source's EHR said about its searches (`pull_tasks.server_messages`, see
 * `server-messages.ts`), distinct over all of the source's queries and pulls: shown with the case's
 * sources, listed per source in the completeness report, and heading the case record's narrative.
 */
import type { Queryable } from '../db/database';
import type { SourceServerMessage } from '../normalize/types';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const rank = (severity: string): number => ['fatal', 'error', 'warning', 'information'].indexOf(severity) >>> 0;

/** Most severe first, then by code and text (a stable order: the bundle is deterministic). */
function sorted(messages: readonly SourceServerMessage[]): SourceServerMessage[] {
  return [...messages].sort((a, b) => rank(a.severity) - rank(b.severity) || cmp(a.code, b.code) || cmp(a.text, b.text));
}

/** Source id → its EHR's distinct messages (sources that said nothing are absent). */
export async function serverMessagesBySource(db: Queryable, caseId: string): Promise<Map<string, SourceServerMessage[]>> {
  const { rows } = await db.query<{ source_id: string; messages: SourceServerMessage[] }>(
    `SELECT t.source_id, jsonb_agg(DISTINCT jsonb_build_object('severity', m->>'severity', 'code', m->>'code', 'text', m->>'text')) AS messages
     FROM pulls p JOIN pull_tasks t ON t.pull_id = p.id CROSS JOIN LATERAL jsonb_array_elements(t.server_messages) m
     WHERE p.case_id = $1
     GROUP BY t.source_id`,
    [caseId],
  );
  return new Map(rows.map((r) => [r.source_id, sorted(r.messages)]));
}
