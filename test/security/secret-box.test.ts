import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/security/secret-box';

const box = new SecretBox(randomBytes(32));

it('opens what it sealed, for the same record only', () => {
  const sealed = box.seal('the token', 'endpoint-1');
  expect(box.open(sealed, 'endpoint-1')).toBe('the token');
  expect(() => box.open(sealed, 'endpoint-2')).toThrow();
  expect(() => new SecretBox(randomBytes(32)).open(sealed, 'endpoint-1')).toThrow();
});

it('refuses a truncated authentication tag (Node would check only the bytes given)', () => {
  const sealed = box.seal('the token', 'endpoint-1');
  const [version, iv, tag, ciphertext] = sealed.split('.') as [string, string, string, string];
  expect(Buffer.from(tag, 'base64url')).toHaveLength(16);
  for (const bytes of [4, 8, 12, 15]) {
    const truncated = [version, iv, Buffer.from(tag, 'base64url').subarray(0, bytes).toString('base64url'), ciphertext].join('.');
    expect(() => box.open(truncated, 'endpoint-1')).toThrow(/authentication tag/);
  }
  const longer = [version, iv, Buffer.concat([Buffer.from(tag, 'base64url'), Buffer.alloc(1)]).toString('base64url'), ciphertext].join('.');
  expect(() => box.open(longer, 'endpoint-1')).toThrow();
});
