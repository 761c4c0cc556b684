import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The GCM tag length sealed and required, in bytes. Node's decipher takes any tag from 4 to 16
 * bytes unless told the length, and a 4-byte tag is forged in about 2^32 tries (NIST SP 800-38D
 * §5.2.1.2, Appendix C): only the full tag opens.
 */
const TAG_BYTES = 16;

/**
 * Encrypts endpoint secrets at rest (bearer tokens, SMART private keys) with AES-256-GCM.
 * Format: `v1.<iv b64url>.<tag b64url>.<ciphertext b64url>`; the version names the key so a key
 * can be rotated by adding `v2` and re-encrypting.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('SECRETS_KEY must be 32 bytes (base64-encoded)');
    this.key = key;
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(associatedData));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /**
   * Decrypts; throws when the text was tampered with or belongs to another record (AAD), or its
   * tag is not the full {@link TAG_BYTES} bytes (a truncated tag is refused, never checked as is).
   */
  open(sealed: string, associatedData: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || ciphertext === undefined) throw new Error('unknown secret format');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (tagBytes.length !== TAG_BYTES) throw new Error(`unknown secret format: the authentication tag is ${tagBytes.length} bytes, not ${TAG_BYTES}`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(tagBytes);
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }
}
