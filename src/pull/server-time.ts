import type { ScannedSearchPage } from '../fhir';
import { parseHttpDate } from '../fhir/retry-after';

/**
 * The lower bound of an incremental re-pull (`_lastUpdated=gt…`,
 * https://hl7.org/fhir/R4/search.html#lastUpdated, or `$everything`'s `_since`,
 * https://hl7.org/fhir/R4/patient-operation-everything.html) is compared by the EHR with the
 * `meta.lastUpdated` it stamps with its own clock. So it is taken from the EHR's clock too: the time
 * it gave with the first page of the query's last complete run ({@link serverTimeOf}, kept in
 * `pull_tasks.server_time`), less {@link SERVER_TIME_MARGIN_MS}. Our clock is used only where the EHR
 * gave no time, less {@link OWN_CLOCK_MARGIN_MS}. A re-pull asking from a little earlier than needed
 * fetches a few records again, which the raw store keeps once (they are keyed by version or content).
 * @packageDocumentation
 */

/**
 * Taken off the EHR's time: its stamp is made after the search ran (and `Date` when the answer was
 * sent), and a record stamped just before may be committed, visible, only after the search.
 */
export const SERVER_TIME_MARGIN_MS = 60_000;

/**
 * Taken off our clock (the pull's start) where the EHR gave no time: the skew between our clock and
 * the EHR's that the bound tolerates.
 */
export const OWN_CLOCK_MARGIN_MS = 15 * 60_000;

/** A FHIR `instant` (https://hl7.org/fhir/R4/datatypes.html#instant): a time with a zone, at least to the second. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A searchset's `meta.lastUpdated` as epoch ms, when it is a FHIR `instant` ({@link INSTANT}: it names its zone). */
function instantOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || !INSTANT.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The response's `Date` header as epoch ms: an HTTP-date in any of its three forms (RFC 9110 §5.6.7,
 * https://www.rfc-editor.org/rfc/rfc9110#http.date — a recipient "MUST accept all three HTTP-date
 * formats"), all GMT. Read by {@link parseHttpDate}, not by plain `Date.parse`, which reads the
 * asctime form (`Sun Nov  6 08:49:37 1994`, no zone named) as the host's local time and takes junk
 * such as `5` or `2026` for a date.
 */
function httpDateOf(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseHttpDate(value.trim());
}

/**
 * The EHR's own time of a query's first page: the searchset Bundle's `meta.lastUpdated`
 * (https://hl7.org/fhir/R4/resource-definitions.html#Meta.lastUpdated) and the response's HTTP `Date`
 * (https://www.rfc-editor.org/rfc/rfc9110#field.date), the earlier of the two when it gave both (the
 * safe side); undefined when it gave neither in a form that reads as a time.
 */
export function serverTimeOf(page: Pick<ScannedSearchPage, 'envelope' | 'date'>): Date | undefined {
  const lastUpdated = page.envelope.meta?.lastUpdated;
  const times = [instantOf(lastUpdated), httpDateOf(page.date)].filter((t): t is number => t !== undefined);
  return times.length > 0 ? new Date(Math.min(...times)) : undefined;
}
