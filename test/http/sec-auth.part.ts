import { SignJWT, type JWTPayload } from 'jose';
import { startForFile } from '../support/for-file';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../support/service';

/**
 * Staff JWT verification beyond signature, algorithm and expiry (test/http/auth.part.ts): the
 * subject must be a real one. The service keys case access (specialist `userSub`, EHR
 * `inboundSubject`) and the access audit on `sub`, so a `sub` that is not a non-empty string is
 * refused rather than coerced (`["dr-a"]` would otherwise act as `dr-a`). Real service.
 */
let svc: TestService;
startForFile(() => startTestService(), (started) => (svc = started));

const sign = (claims: JWTPayload): Promise<string> =>
  new SignJWT({ roles: ['admin'], ...claims }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(TEST_JWT_SECRET));

describe('the sub claim', () => {
  it.each([
    ['an array', ['dr-a']],
    ['a number', 12345],
    ['an object', { id: 'dr-a' }],
    ['empty', ''],
    ['blank', '   '],
  ])('answers 401 when it is %s', async (_what, sub) => {
    const res = await svc.request('GET', '/api/endpoints', { token: await sign({ sub } as JWTPayload) });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('accepts a non-empty string', async () => {
    expect((await svc.request('GET', '/api/endpoints', { token: await sign({ sub: 'admin-sec' }) })).status).toBe(200);
  });
});
