/**
 * What a server says about a search besides its results: the OperationOutcome it may put in a
 * searchset as an entry with `search.mode = outcome` — hints and warnings such as "results were
 * truncated", "a parameter was ignored", "some resources were withheld"
 * (https://hl7.org/fhir/R4/search.html#errors, https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).
 * They are not records (the raw page keeps them, the raw store of resources does not), but a case
 * manager must see them: a pull can be complete and still lack what the server chose not to send.
 *
 * Each query keeps its distinct messages (severity, code, text) with the number of pages that
 * carried them, at most {@link MAX_MESSAGES} of them, each text at most {@link MAX_TEXT} characters.
 * @packageDocumentation
 */

import { NOTEWORTHY_SEVERITIES } from '../normalize/types';
import { isRecord } from '../util/is-record';

/** One issue of a server's OperationOutcome, as shown to the case manager. */
export interface ServerIssue {
  /** `fatal` | `error` | `warning` | `information` (as sent; `unknown` when missing). */
  readonly severity: string;
  readonly code: string;
  /** `details.text`, else `diagnostics`, else the first coding's display or code of `details`. */
  readonly text: string;
}

/** A distinct issue of a query, with how many of its pages carried it. */
export interface ServerMessage extends ServerIssue {
  readonly pages: number;
}

/** Distinct messages kept per query. */
export const MAX_MESSAGES = 20;
/** Characters kept of a message's text. */
export const MAX_TEXT = 500;

/** `text` cut to `max` characters, the cut said by an ellipsis. */
export const ellipsized = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

function textOf(issue: Record<string, unknown>): string {
  const details = isRecord(issue.details) ? issue.details : undefined;
  const coding = Array.isArray(details?.coding) ? details.coding.find(isRecord) : undefined;
  const text = str(details?.text) ?? str(issue.diagnostics) ?? str(coding?.display) ?? str(coding?.code) ?? '(no text)';
  return ellipsized(text, MAX_TEXT);
}

/** The issues of a server's OperationOutcome (anything else: none). */
export function serverIssuesOf(outcome: Record<string, unknown>): ServerIssue[] {
  if (outcome.resourceType !== 'OperationOutcome' || !Array.isArray(outcome.issue)) return [];
  return outcome.issue.filter(isRecord).map((issue) => ({
    severity: str(issue.severity) ?? 'unknown',
    code: str(issue.code) ?? 'unknown',
    text: textOf(issue),
  }));
}

const keyOf = (i: ServerIssue): string => `${i.severity}\u0000${i.code}\u0000${i.text}`;

/**
 * A query's messages after one more page: each distinct issue of the page counts that page once;
 * new issues join while fewer than {@link MAX_MESSAGES} are kept. Returns `known` itself when the
 * page said nothing.
 */
export function addServerMessages(known: readonly ServerMessage[], page: readonly ServerIssue[]): readonly ServerMessage[] {
  if (page.length === 0) return known;
  const out = known.map((m) => ({ ...m }));
  const index = new Map(out.map((m, i) => [keyOf(m), i]));
  for (const key of new Set(page.map(keyOf))) {
    const at = index.get(key);
    const message = out[at ?? -1];
    if (message) out[at as number] = { ...message, pages: message.pages + 1 };
    else if (out.length < MAX_MESSAGES) {
      const issue = page.find((i) => keyOf(i) === key) as ServerIssue;
      index.set(key, out.length);
      out.push({ severity: issue.severity, code: issue.code, text: issue.text, pages: 1 });
    }
  }
  return out;
}

/**
 * How many distinct things worth a reader's attention (severity fatal, error or warning) the servers
 * said about these queries: what may make a complete pull less than the whole record.
 */
export function noteworthyMessageCount(queries: readonly { readonly serverMessages: readonly ServerIssue[] }[]): number {
  const distinct = new Set<string>();
  for (const q of queries) for (const m of q.serverMessages) if (NOTEWORTHY_SEVERITIES.has(m.severity)) distinct.add(keyOf(m));
  return distinct.size;
}
