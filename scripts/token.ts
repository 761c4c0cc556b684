/**
 * Prints a development API token signed with the service's HS256 secret
 * (AUTH_JWT_SECRET, or the development secret under DATA_DIR that `npm start` creates).
 *
 *   npm run token -- --role case_manager --sub alice [--role admin] [--expires 8h]
 */
import { SignJWT } from 'jose';
import { loadConfig } from '../src/config';
import { API_ROLES, type ApiRole } from '../src/http/auth';

interface TokenArgs {
  roles: ApiRole[];
  sub: string;
  expires: string;
}

function parseArgs(argv: readonly string[]): TokenArgs {
  const args: TokenArgs = { roles: [], sub: '', expires: '1h' };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined || !flag?.startsWith('--')) throw new Error(`Expected "--flag value", got "${flag ?? ''}"`);
    i += 1;
    if (flag === '--role') {
      for (const role of value.split(',')) {
        if (!(API_ROLES as readonly string[]).includes(role)) throw new Error(`--role must be one of ${API_ROLES.join(', ')}`);
        args.roles.push(role as ApiRole);
      }
    } else if (flag === '--sub') args.sub = value;
    else if (flag === '--expires') args.expires = value;
    else throw new Error(`Unknown flag ${flag}`);
  }
  if (args.roles.length === 0) throw new Error('--role is required');
  if (!args.sub) throw new Error('--sub is required');
  return args;
}

export async function mintToken(secret: string, args: TokenArgs, claims: { issuer?: string; audience?: string; rolesClaim: string }): Promise<string> {
  let jwt = new SignJWT({ [claims.rolesClaim]: args.roles })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(args.sub)
    .setIssuedAt()
    .setExpirationTime(args.expires);
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfig({ ...process.env, ROLE: 'all' });
  if (!config.auth.jwtSecret) throw new Error('This service verifies tokens with AUTH_JWKS_URL; mint tokens at your identity provider.');
  process.stdout.write(`${await mintToken(config.auth.jwtSecret, args, config.auth)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`token: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
