/**
 * `Idempotency-Key` on `POST /api/cases/:id/uploads`: a family portal on a flaky connection may
 * send the same upload again. The upload id is derived from the case and the key (UUID v5), so a
 * resend finds the upload already stored and gets it back instead of storing a second one.
 */
import { idForIdempotencyKey } from '../http/idempotency-key';

/** The upload id for a request: derived from `Idempotency-Key` when sent, else `undefined`. */
export function uploadIdForKey(caseId: string, header: string | string[] | undefined): string | undefined {
  return idForIdempotencyKey(`upload:${caseId}`, header);
}
