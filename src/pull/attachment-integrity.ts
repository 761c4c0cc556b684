/**
 * How fetched bytes compare with what the resource declared about them
 * (https://hl7.org/fhir/R4/datatypes.html#Attachment: `size`, and `hash` = base64 SHA-1).
 */
export type Integrity = 'verified' | 'unverified' | 'size-mismatch' | 'hash-mismatch' | 'size-and-hash-mismatch';

export function integrityOf(declared: { size: number | null; sha1: string | null }, actual: { size: number; sha1Base64: string }): Integrity {
  const sizeBad = declared.size !== null && declared.size !== actual.size;
  const hashBad = declared.sha1 !== null && declared.sha1.replace(/\s/g, '') !== actual.sha1Base64;
  if (sizeBad && hashBad) return 'size-and-hash-mismatch';
  if (sizeBad) return 'size-mismatch';
  if (hashBad) return 'hash-mismatch';
  return declared.size === null && declared.sha1 === null ? 'unverified' : 'verified';
}
