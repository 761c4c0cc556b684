/**
 * A refused query whose records another query of the same pull and source asked for loses nothing:
 * where a server refuses `category:missing` (HAPI does, unless it indexes missing fields) but answers
 * `category:not`, which asks for uncategorized Observations too (`observation-categories.ts`), the
 * refusal is said as `information` — not a `warning`, which the case manager is told about as
 * something that may mean records are missing (`noteworthyMessageCount`, the Composition's narrative).
 * Settled once every task of the pull has ended (`finishPull`), when both queries' outcomes are known.
 * @packageDocumentation
 */
import type { Queryable } from '../db/database';
import { coveredRefusals } from './pull-plan';
import type { ServerMessage } from './server-messages';

/** The code of the message a refused query ends with (pull-task-runner.ts). */
const REFUSED = 'not-supported';

/** The message a refused query ended with, still a warning: its code, and its text starting with what the refusal leaves out. */
function refusalOf(messages: readonly ServerMessage[], refusal: string): ServerMessage | undefined {
  return messages.find((m) => m.code === REFUSED && m.severity === 'warning' && m.text.startsWith(refusal));
}

/**
 * Turns each covered refusal of the pull into information: for every source, a query ended complete
 * as refused whose covering query ended complete unrefused. Idempotent (a settled message is no
 * longer a warning); guarded on the messages read, so a concurrent change is not overwritten.
 */
export async function settleCoveredRefusals(db: Queryable, pullId: string): Promise<void> {
  for (const pair of coveredRefusals()) {
    const { rows } = await db.query<{ id: string; source_id: string; query_key: string; state: string; server_messages: ServerMessage[] }>(
      "SELECT id, source_id, query_key, state, server_messages FROM pull_tasks WHERE pull_id = $1 AND query_key = ANY($2) AND state = 'complete'",
      [pullId, [pair.key, pair.coveredBy]],
    );
    for (const refused of rows.filter((r) => r.query_key === pair.key)) {
      const message = refusalOf(refused.server_messages, pair.refusal);
      if (!message) continue;
      const cover = rows.find((r) => r.query_key === pair.coveredBy && r.source_id === refused.source_id);
      if (!cover || cover.server_messages.some((m) => m.code === REFUSED && m.severity === 'warning')) continue;
      const settled = refused.server_messages.map((m) => (m === message ? { ...m, severity: 'information', text: `${m.text}; ${pair.said}` } : m));
      await db.query('UPDATE pull_tasks SET server_messages = $2::jsonb, updated_at = now() WHERE id = $1 AND server_messages = $3::jsonb', [
        refused.id,
        JSON.stringify(settled),
        JSON.stringify(refused.server_messages),
      ]);
    }
  }
}
