/**
 * An amended report's DocumentReference `replaces` the previous version's (`relatesTo`,
 * https://hl7.org/fhir/R4/documentreference-definitions.html#DocumentReference.relatesTo). A FHIR
 * server does not act on that link by itself: the replaced reference stays `current` until its writer
 * marks it `superseded` (https://hl7.org/fhir/R4/valueset-document-reference-status.html), and until
 * then the referring physician's EHR lists the old note beside the amendment as if both held. So after
 * the amended version is written, the previous version's DocumentReference is read and updated to
 * `superseded`, on the version read (`If-Match`). A version conflict means it changed meanwhile: read
 * again. R4 lets a server signal that conflict with 412 Precondition Failed or 409 Conflict
 * (https://hl7.org/fhir/R4/http.html#update: "409/412 - version conflict management";
 * https://hl7.org/fhir/R4/http.html#concurrency), and widely deployed servers answer 409 (HAPI FHIR's
 * `ResourceVersionConflictException`; STU3 prescribed 409), so both are read again. A 409 after which
 * the note reads at the very version we sent is no version conflict: a refusal, reported as such.
 *
 * Only where the amended version replaces something at that recipient: an earlier version's report
 * is in that chart (`statusAtRecipient` in report-resources.ts, the `previousDocumentId` of the
 * writer's `WriteContext`). A version `final` at a recipient that never got an earlier one (added
 * later, or its delivery failed or was cancelled) replaces and supersedes nothing there.
 *
 * Idempotent: a reference already `superseded` is left alone, so a delivery run again after a crash
 * changes nothing. The DiagnosticReport has no such status (an amended report is a new resource with
 * status `amended`, naming the one it replaces by the `diagnosticReport-replaces` extension,
 * report-resources.ts); the earlier one is not touched.
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
 * The statuses a server answers an update whose `If-Match` names a version no longer current with:
 * 412 (https://hl7.org/fhir/R4/http.html#concurrency) or 409 (https://hl7.org/fhir/R4/http.html#update,
 * "409/412 - version conflict management"; HAPI FHIR answers 409).
 */
const VERSION_CONFLICT_STATUSES: ReadonlySet<number> = new Set([409, 412]);

/** Why a note whose version the recipient does not tell is left current. */
export const NO_VERSION_REASON = 'the recipient gives no version of it (no meta.versionId, no ETag), so it could not be updated without risking a change made there since it was read';

/**
 * Marks the recipient's DocumentReference `id` superseded, on the version read (`If-Match`): its
 * `meta.versionId`, else its `ETag`; a recipient that tells neither is not asked (a blind update could
 * overwrite a change made there), and the note is left current with the reason.
 * @returns what happened; a refusal the recipient will keep giving (403, 404, 405, 422…) is an
 *   outcome (`left-current`, with the reason), not an error: the amendment itself is delivered
 * @throws what another attempt may fix (network, 5xx, 429), for the job to retry
 */
export async function supersedeDocument(client: FhirEndpointClient, id: string): Promise<SupersedeOutcome> {
  /** The version our last update named when the recipient answered 409, to tell a version conflict from a refusal. */
  let conflictOn: { readonly versionId: string | undefined } | undefined;
  for (let read = 1; read <= MAX_READS; read++) {
    let current: DocumentReference;
    let versionId: string | undefined;
    try {
      ({ resource: current, versionId } = await client.readVersioned<DocumentReference>('DocumentReference', id));
    } catch (err) {
      if (!isPermanentFhirError(err)) throw err;
      const gone = isGoneError(err);
      return { id, state: 'left-current', reason: `${gone ? 'it is no longer at the recipient' : 'the recipient refused to read it'}${httpStatus(err)}` };
    }
    if (current.status === 'superseded') return { id, state: 'already-superseded' };
    if (current.status === 'entered-in-error') return { id, state: 'left-current', reason: 'it is marked entered-in-error at the recipient' };
    // A 409 while the note stayed at the version we updated: not a version conflict, a refusal.
    if (conflictOn !== undefined && conflictOn.versionId === versionId) {
      return { id, state: 'left-current', reason: 'the recipient refused to update it (HTTP 409)' };
    }
    // No version to name in If-Match: an update could overwrite a change made there since the read.
    if (versionId === undefined) return { id, state: 'left-current', reason: NO_VERSION_REASON };
    try {
      await client.update<DocumentReference>({ ...current, status: 'superseded' }, versionId);
      return { id, state: 'superseded' };
    } catch (err) {
      // Changed at the recipient since it was read (412, or 409 as HAPI FHIR says it): read it again,
      // never overwrite their change.
      if (err instanceof FhirHttpError && VERSION_CONFLICT_STATUSES.has(err.status)) {
        conflictOn = err.status === 409 ? { versionId } : undefined;
        continue;
      }
      if (!isPermanentFhirError(err)) throw err;
      return { id, state: 'left-current', reason: `the recipient refused to update it${httpStatus(err)}` };
    }
  }
  return { id, state: 'left-current', reason: 'it kept changing at the recipient while it was updated' };
}

/**
 * Why the replaced note was left current where the EHR did not grant this client update on
 * DocumentReferences (the token response's `scope`,
 * https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5; scopes:
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): the update would be refused
 * (403), so none is sent, and the case manager reads what the EHR must grant.
 */
export function updateNotGrantedReason(grantedScope: string): string {
  return `the recipient EHR did not grant this client update on DocumentReference (granted SMART scope "${grantedScope}"; superseding the note needs system/DocumentReference.write, .u or .*), so it was not asked to update it`;
}
