/**
 * A server that ignores `_type` on `Patient/$everything` (https://hl7.org/fhir/R4/patient-operation-everything.html:
 * "_type: one or more parameters, each containing one or more comma-delimited FHIR resource types to
 * include in the return resources"; a server may ignore a parameter it does not support,
 * https://hl7.org/fhir/R4/search.html#errors) answers every `_type` stream of the plan with the whole
 * record: each of the streams would download all of it, and the progress would count it once per stream.
 *
 * A stream's first page tells: a `match` entry of a type the pull asks for (`PULL_RESOURCE_TYPES`) that
 * its `_type` does not name (the Patient aside, which a server may add; `include` entries aside; a
 * referenced Practitioner or Organization is no evidence either). Then one stream of the source — the
 * lead: the one asking from the earliest `_since` (none first), then in plan order — asks again
 * WITHOUT `_type`, for everything, and says so among its server messages (information, not a warning: nothing is missing, and a warning would tell the specialist the record may be incomplete); every other stream
 * ends `complete` with nothing stored, saying which stream brings its types. So the record is
 * downloaded once and each resource counted once.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import type { PageEntry } from './page-resources';
import { everythingStreamRank, isEverythingStream, PULL_RESOURCE_TYPES } from './pull-plan';
import { addServerMessages, type ServerIssue, type ServerMessage } from './server-messages';

const PULLED: ReadonlySet<string> = new Set(PULL_RESOURCE_TYPES);

/** What a task of an `$everything` stream is read as here. */
interface StreamTask {
  readonly id: string;
  readonly pullId: string;
  readonly sourceId: string;
  readonly queryKey: string;
  readonly requestPath: string;
  readonly requestParams: Readonly<Record<string, string>>;
  /** What the server said about the query so far. */
  readonly serverMessages: readonly ServerMessage[];
}

/**
 * The types the pull asks for that a page of an `$everything` stream holds as matches although its
 * `_type` does not name them (sorted); empty for any other query, or a stream without `_type`.
 */
export function typesOutsideStream(task: Pick<StreamTask, 'requestPath' | 'requestParams'>, entries: readonly Pick<PageEntry, 'type' | 'searchMode'>[]): string[] {
  const asked = task.requestParams._type;
  if (!isEverythingStream(task) || asked === undefined) return [];
  const named = new Set(asked.split(','));
  const outside = new Set<string>();
  for (const entry of entries) {
    if (entry.searchMode === 'include' || entry.searchMode === 'outcome' || entry.type === 'Patient') continue;
    if (PULLED.has(entry.type) && !named.has(entry.type)) outside.add(entry.type);
  }
  return [...outside].sort();
}

/** The order in which streams are chosen to lead: no `_since` first, then the earliest, then the plan's order. */
function leadOrder(a: StreamTask, b: StreamTask): number {
  const since = (t: StreamTask): number => (t.requestParams._since === undefined ? Number.NEGATIVE_INFINITY : Date.parse(t.requestParams._since) || 0);
  return since(a) - since(b) || everythingStreamRank(a.queryKey) - everythingStreamRank(b.queryKey) || a.queryKey.localeCompare(b.queryKey);
}

/** How a stream that found its `_type` ignored goes on. */
export type IgnoredTypeDecision =
  /** This stream asks again without `_type` (its params, type and messages as stored). */
  | { readonly lead: true; readonly requestParams: Record<string, string>; readonly serverMessages: readonly ServerMessage[] }
  /** Another stream brings everything: this one ends, complete, saying so (its messages with that said). */
  | { readonly lead: false; readonly serverMessages: readonly ServerMessage[] };

/**
 * Decides, from the source's `$everything` streams of the pull, which one asks for everything. A stream
 * that completed still asking by `_type` (an earlier attempt, when the server honoured it) or was
 * cancelled cannot lead. When this stream leads, its task row loses `_type` (so a retry or a resumed
 * run asks the same), becomes a `*` query and keeps the message, in the same statement that checks it
 * is not cancelled.
 * @returns undefined when this task was cancelled meanwhile
 */
export async function decideIgnoredType(db: Queryable, task: StreamTask, outside: readonly string[]): Promise<IgnoredTypeDecision | undefined> {
  const { rows } = await db.query<{ id: string; pull_id: string; source_id: string; query_key: string; request_path: string; request_params: Record<string, string>; state: string }>(
    `SELECT id, pull_id, source_id, query_key, request_path, request_params, state FROM pull_tasks
      WHERE pull_id = $1 AND source_id = $2 AND request_path = $3`,
    [task.pullId, task.sourceId, task.requestPath],
  );
  const streams = rows
    .filter((r) => r.id === task.id || (r.state !== 'cancelled' && !(r.state === 'complete' && r.request_params._type !== undefined)))
    .map((r): StreamTask => ({ id: r.id, pullId: r.pull_id, sourceId: r.source_id, queryKey: r.query_key, requestPath: r.request_path, requestParams: r.request_params, serverMessages: [] }))
    .sort(leadOrder);
  // A stream that already asks without `_type` leads; else the first in lead order.
  const lead = streams.find((s) => s.requestParams._type === undefined) ?? streams[0] ?? task;
  const asked = task.requestParams._type ?? '';
  const said = `The server ignored _type on Patient/$everything: the stream asking for ${asked} was answered with ${outside.join(', ')} as well`;
  if (lead.id !== task.id) {
    const issue: ServerIssue = { severity: 'information', code: 'informational', text: `${said}; its types come with the stream ${lead.queryKey}, which asks for every type, and this one asked no further.` };
    return { lead: false, serverMessages: addServerMessages(task.serverMessages, [issue]) };
  }
  const { _type: _dropped, ...requestParams } = task.requestParams;
  const issue: ServerIssue = { severity: 'information', code: 'not-supported', text: `${said}; this stream asks for every type instead (no _type), and the source's other streams end without asking further.` };
  const serverMessages = addServerMessages(task.serverMessages, [issue]);
  const { rowCount } = await db.query(
    `UPDATE pull_tasks SET request_params = $2, resource_type = '*', server_messages = $3, updated_at = now() WHERE id = $1 AND state <> 'cancelled'`,
    [task.id, JSON.stringify(requestParams), JSON.stringify(serverMessages)],
  );
  if (rowCount === 0) return undefined;
  return { lead: true, requestParams, serverMessages };
}
