import { signatureHeader, signWebhook, verifyWebhook } from '../../src/notify/webhook-signature';

/**
 * What a subscriber runs during a secret rotation: a header listing several `sha256=` signatures
 * (the new secret's first) verifies with any secret that made one of them, and with nothing else;
 * the body and the timestamp stay bound to the signature; stale timestamps are still refused.
 */
const NEW = 'whsec-new-0123456789abcdef0123456789abcdef';
const OLD = 'whsec-old-0123456789abcdef0123456789abcdef';
const OTHER = 'whsec-other-0123456789abcdef0123456789abcd';
const body = JSON.stringify({ id: 'evt-7', type: 'report.delivered', createdAt: '2026-03-05T15:00:00.000Z', caseId: 'c-1', data: {} });
const timestamp = 1_772_722_800;
const headers = (signature: string, ts = timestamp) => ({ signature, timestamp: String(ts) });

describe('a header with two signatures (rotation overlap)', () => {
  const both = signatureHeader([NEW, OLD], timestamp, body);

  it('lists the new secret first, comma-separated', () => {
    expect(both).toBe(`${signWebhook(NEW, timestamp, body)}, ${signWebhook(OLD, timestamp, body)}`);
    expect(both).toMatch(/^sha256=[0-9a-f]{64}, sha256=[0-9a-f]{64}$/);
  });

  it('verifies with the new secret and with the old one', () => {
    expect(verifyWebhook(NEW, headers(both), body, timestamp)).toBe(true);
    expect(verifyWebhook(OLD, headers(both), body, timestamp)).toBe(true);
  });

  it('refuses a secret that made neither signature', () => {
    expect(verifyWebhook(OTHER, headers(both), body, timestamp)).toBe(false);
  });

  it('refuses a tampered body and a changed timestamp, with either secret', () => {
    const tampered = body.replace('c-1', 'c-2');
    for (const secret of [NEW, OLD]) {
      expect(verifyWebhook(secret, headers(both), tampered, timestamp)).toBe(false);
      expect(verifyWebhook(secret, headers(both, timestamp + 1), body, timestamp)).toBe(false);
    }
  });

  it('refuses a stale timestamp (a replay) and one from the future beyond the tolerance', () => {
    expect(verifyWebhook(NEW, headers(both), body, timestamp + 301)).toBe(false);
    expect(verifyWebhook(OLD, headers(both), body, timestamp - 301)).toBe(false);
    expect(verifyWebhook(NEW, headers(both), body, timestamp + 300)).toBe(true);
  });

  it('takes the signatures in any order and with or without spaces after the commas', () => {
    const [first, second] = both.split(', ');
    for (const signature of [`${second}, ${first}`, `${first},${second}`, ` ${second} ,${first} `]) {
      expect(verifyWebhook(NEW, headers(signature), body, timestamp)).toBe(true);
      expect(verifyWebhook(OLD, headers(signature), body, timestamp)).toBe(true);
    }
  });

  it('ignores entries of another scheme, empty and malformed entries, and refuses a header of nothing else', () => {
    const ours = signWebhook(OLD, timestamp, body);
    expect(verifyWebhook(OLD, headers(`v1=abc, , sha256=zz, ${ours}`), body, timestamp)).toBe(true);
    expect(verifyWebhook(OLD, headers(`v1=${ours.slice(7)}, sha256=, sha256=${'0'.repeat(64)}`), body, timestamp)).toBe(false);
    expect(verifyWebhook(OLD, headers(ours.slice(7)), body, timestamp)).toBe(false);
    expect(verifyWebhook(OLD, headers(''), body, timestamp)).toBe(false);
    expect(verifyWebhook(OLD, { signature: both, timestamp: null }, body, timestamp)).toBe(false);
  });
});

describe('signatureHeader', () => {
  it('signs once for a single secret (the header before any rotation)', () => {
    expect(signatureHeader([NEW], timestamp, body)).toBe(signWebhook(NEW, timestamp, body));
    expect(verifyWebhook(NEW, headers(signatureHeader([NEW], timestamp, body)), body, timestamp)).toBe(true);
    expect(verifyWebhook(OLD, headers(signatureHeader([NEW], timestamp, body)), body, timestamp)).toBe(false);
  });

  it('lists a secret rotated to itself once', () => {
    expect(signatureHeader([NEW, NEW], timestamp, body)).toBe(signWebhook(NEW, timestamp, body));
  });

  it('needs at least one secret', () => {
    expect(() => signatureHeader([], timestamp, body)).toThrow(/at least one secret/);
  });
});
