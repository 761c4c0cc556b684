/**
 * `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a client on a flaky connection may
 * send the same creating request again. The id of what the request creates is derived from the key
 * and a scope (UUID v5), so a resend finds what the first one stored instead of storing it twice.
 * The scope keeps two clients' keys apart (the token subject, or the case an upload is for).
 */
import { uuidV5 } from '../normalize/ids';
import { HttpProblem } from './problem';

const KEY = /^[\x21-\x7e]{1,200}$/;

/**
 * The id derived from the request's `Idempotency-Key` header within `scope`, or undefined without
 * the header.
 * @throws HttpProblem 400 naming the header when it is not 1–200 visible ASCII characters
 */
export function idForIdempotencyKey(scope: string, header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || !KEY.test(key)) {
    throw new HttpProblem(400, 'Invalid request', 'Idempotency-Key must be 1–200 visible ASCII characters (for example a UUID).', [
      { field: 'Idempotency-Key', pointer: 'header:Idempotency-Key', detail: 'not 1–200 visible ASCII characters' },
    ]);
  }
  return uuidV5(`urn:second-opinion-bridge:${scope}:${key}`);
}

/** The answer's header saying it repeats what the first request with the key made. */
export const replayedHeader = (replayed: boolean): Record<string, string> => (replayed ? { 'Idempotent-Replayed': 'true' } : {});

/** 422 for an `Idempotency-Key` already used for another request (as the draft says). */
export function keyReused(what: string): HttpProblem {
  return new HttpProblem(422, 'Unprocessable Content', `Idempotency-Key was already used for another ${what}: send a new key.`, [
    { field: 'Idempotency-Key', pointer: 'header:Idempotency-Key', detail: `already used for another ${what}` },
  ]);
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: unknown }).code === '23505';

/**
 * Creates once per key: with a key-derived id, what the first request made is answered again
 * (`replayed`), also when two requests with the key race (the second insert's unique violation).
 * @param existing - what was made under the id, or undefined; throws {@link keyReused} when it was made from another request
 * @param create - makes it under the id (an insert that fails with a unique violation when it exists)
 */
export async function createOnce<T>(keyedId: string | undefined, existing: (id: string) => Promise<T | undefined>, create: () => Promise<T>): Promise<{ value: T; replayed: boolean }> {
  if (keyedId !== undefined) {
    const found = await existing(keyedId);
    if (found !== undefined) return { value: found, replayed: true };
  }
  try {
    return { value: await create(), replayed: false };
  } catch (err) {
    const found = keyedId !== undefined && isUniqueViolation(err) ? await existing(keyedId) : undefined;
    if (found !== undefined) return { value: found, replayed: true };
    throw err;
  }
}
