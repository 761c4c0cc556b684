/**
 * `Idempotency-Key` on `POST /api/cases/:id/uploads`: a family portal on a flaky connection may
 * send the same upload again. The upload id is derived from the case and the key (UUID v5), so a
 * resend finds the upload already stored and gets it back instead of storing a second one.
 * (The header follows draft-ietf-httpapi-idempotency-key-header.)
 */
import { HttpProblem } from '../http/problem';
import { uuidV5 } from '../normalize/ids';

const KEY = /^[\x21-\x7e]{1,200}$/;

/** The upload id for a request: derived from `Idempotency-Key` when sent, else `undefined`. */
export function uploadIdForKey(caseId: string, header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || !KEY.test(key)) {
    throw new HttpProblem(400, 'Invalid request', 'Idempotency-Key must be 1–200 visible ASCII characters (for example a UUID).', [
      { field: 'Idempotency-Key', pointer: 'header:Idempotency-Key', detail: 'not 1–200 visible ASCII characters' },
    ]);
  }
  return uuidV5(`urn:second-opinion-bridge:upload:${caseId}:${key}`);
}
