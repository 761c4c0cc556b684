/**
 * An amended report's DocumentReference `replaces` the previous version's (`relatesTo`,
 * https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.relatesTo). A FHIR
 * server does not act on that link by itself: the replaced reference stays `current` until its writer
 * marks it `superseded` (https://hl7.org/fhir/R4/valueset-document-reference-status.html), and until
 * then the referring physician's EHR lists the old note beside the amendment as if both held. So after
 * the amended version is written, the previous version's DocumentReference is read and updated to
 * `superseded`, on the version read (`If-Match`; a 412 means it changed meanwhile: read again).
 *
 * Only where the amended version replaces something at that recipient: an earlier version's report
 * is in that chart (`statusAtRecipient` in report-resources.ts, the `previousDocumentId` of the
 * writer's `WriteContext`). A version `final` at a recipient that never got an earlier one (added
 * later, or its delivery failed or was cancelled) replaces and supersedes nothing there.
 *
 * Idempotent: a reference already `superseded` is left alone, so a delivery run again after a crash
 * changes nothing. The DiagnosticReport has no such status (an amended report is a new resource with
 * status `amended`); it is not touched.
 * @packageDocumentation
 */
import type { DocumentReference } from 'fhir/r4';
import { FhirHttpError, isGoneError, isPermanentFhirError, type FhirEndpointClient } from '../fhir';

/** What became of the previous version's DocumentReference at the recipient. */
export type SupersedeOutcome =
  | { readonly id: string; readonly state: 'superseded' | 'already-superseded' }
  | { readonly id: string; readonly state: 'left-current'; readonly reason: string };

/** Reads before giving up when the reference keeps changing between our read and our update. */
const MAX_READS = 3;

/** ` (HTTP n)` for an HTTP refusal. */
const httpStatus = (err: unknown): string => (err instanceof FhirHttpError ? ` (HTTP ${err.status})` : '');

/**
 * Marks the recipient's DocumentReference `id` superseded.
 * @returns what happened; a refusal the recipient will keep giving (403, 404, 405, 422…) is an
 *   outcome (`left-current`, with the reason), not an error: the amendment itself is delivered
 * @throws what another attempt may fix (network, 5xx, 429), for the job to retry
 */
export async function supersedeDocument(client: FhirEndpointClient, id: string): Promise<SupersedeOutcome> {
  for (let read = 1; read <= MAX_READS; read++) {
    let current: DocumentReference;
    try {
      current = await client.read<DocumentReference>('DocumentReference', id);
    } catch (err) {
      if (!isPermanentFhirError(err)) throw err;
      const gone = isGoneError(err);
      return { id, state: 'left-current', reason: `${gone ? 'it is no longer at the recipient' : 'the recipient refused to read it'}${httpStatus(err)}` };
    }
    if (current.status === 'superseded') return { id, state: 'already-superseded' };
    if (current.status === 'entered-in-error') return { id, state: 'left-current', reason: 'it is marked entered-in-error at the recipient' };
    try {
      await client.update<DocumentReference>({ ...current, status: 'superseded' }, current.meta?.versionId);
      return { id, state: 'superseded' };
    } catch (err) {
      // Changed at the recipient since it was read: read it again (never overwrite their change).
      if (err instanceof FhirHttpError && err.status === 412) continue;
      if (!isPermanentFhirError(err)) throw err;
      return { id, state: 'left-current', reason: `the recipient refused to update it${httpStatus(err)}` };
    }
  }
  return { id, state: 'left-current', reason: 'it kept changing at the recipient while it was updated' };
}
