import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AttachmentTooLargeError } from './errors';

/**
 * Size cap and hashes for attachment bytes on their way to a blob store. The hashes match what
 * FHIR and our store need: SHA-256 (blob key) and SHA-1 (R4 `Attachment.hash` is base64 SHA-1,
 * https://hl7.org/fhir/R4/datatypes.html#Attachment).
 */
export interface AttachmentDigest {
  readonly size: number;
  /** SHA-256, hex. */
  readonly sha256: string;
  /** SHA-1, hex. */
  readonly sha1: string;
  /** SHA-1, base64: compare with `Attachment.hash`. */
  readonly sha1Base64: string;
}

/** A pass-through that counts and hashes bytes and errors with AttachmentTooLargeError past `maxBytes`. */
export class DigestingLimit extends Transform {
  private size = 0;
  private readonly sha256 = createHash('sha256');
  private readonly sha1 = createHash('sha1');

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      callback(new AttachmentTooLargeError(this.maxBytes, this.size, false));
      return;
    }
    this.sha256.update(chunk);
    this.sha1.update(chunk);
    callback(null, chunk);
  }

  /** Valid once the stream has finished. */
  digest(): AttachmentDigest {
    return digestOf(this.size, this.sha256, this.sha1);
  }
}

/** Digest of an in-memory buffer. */
export function digestBuffer(data: Buffer): AttachmentDigest {
  return digestOf(data.length, createHash('sha256').update(data), createHash('sha1').update(data));
}

function digestOf(size: number, sha256: Hash, sha1: Hash): AttachmentDigest {
  const sha1Bytes = sha1.digest();
  return { size, sha256: sha256.digest('hex'), sha1: sha1Bytes.toString('hex'), sha1Base64: sha1Bytes.toString('base64') };
}
