import { z } from 'zod';
import { signingKeyProblem } from './signing-key';

/**
 * The public endpoint registration contract (admin role): `POST /api/endpoints`
 * `{name, baseUrl, auth, maxRequestsPerSecond?, maxConcurrency?, allowInsecureHttp?, rebaseNextLinks?, inboundSubject?}`.
 */

/**
 * A private signing key for SMART Backend Services client assertions (RS384 or ES384 P-384), checked
 * as a key (`signing-key.ts`): RSA of at least 2048 bits, private part matching the public members.
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html
 */
const PrivateKeyJwk = z
  .object({
    kty: z.enum(['RSA', 'EC'], { error: 'privateKeyJwk.kty must be RSA or EC' }),
    kid: z.string().min(1, { error: 'privateKeyJwk.kid is required: the server picks our public key by it' }).max(200),
    alg: z.enum(['RS384', 'ES384'], { error: 'privateKeyJwk.alg must be RS384 or ES384 (SMART Backend Services)' }),
    d: z.string({ error: 'privateKeyJwk must be a private key (it has no "d")' }).min(1),
    crv: z.string().optional(),
    x: z.string().optional(),
    y: z.string().optional(),
    n: z.string().optional(),
    e: z.string().optional(),
    p: z.string().optional(),
    q: z.string().optional(),
    dp: z.string().optional(),
    dq: z.string().optional(),
    qi: z.string().optional(),
  })
  .loose()
  .superRefine((jwk, ctx) => {
    if (jwk.kty === 'EC' && (jwk.alg !== 'ES384' || jwk.crv !== 'P-384' || !jwk.x || !jwk.y)) {
      ctx.addIssue({ code: 'custom', message: 'an EC key must be P-384 with x and y, alg ES384' });
      return;
    }
    if (jwk.kty === 'RSA' && (jwk.alg !== 'RS384' || !jwk.n || !jwk.e)) {
      ctx.addIssue({ code: 'custom', message: 'an RSA key must have n and e, alg RS384' });
      return;
    }
    // The shape is right: now the key itself (builds, RSA ≥ 2048 bits, d matches the public members).
    const problem = signingKeyProblem(jwk);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: [...problem.path] });
  });

export const EndpointAuthInput = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('none') }),
    z.object({ type: z.literal('bearer'), token: z.string().min(1, { error: 'token must not be empty' }).max(8192) }),
    z
      .object({
        type: z.literal('smart-backend'),
        clientId: z.string().trim().min(1, { error: 'clientId is required' }).max(255),
        privateKeyJwk: PrivateKeyJwk,
        /**
         * Key rotation: a key published in our JWKS beside the signing one, not used to sign until
         * promoted (`POST /api/endpoints/:id/keys/promote`), so the EHR can learn it first.
         */
        nextPrivateKeyJwk: PrivateKeyJwk.optional(),
        scope: z.string().trim().min(1).max(1000).optional(),
      })
      .refine((a) => a.nextPrivateKeyJwk === undefined || a.nextPrivateKeyJwk.kid !== a.privateKeyJwk.kid, {
        error: 'nextPrivateKeyJwk.kid must differ from privateKeyJwk.kid: the EHR tells the two keys apart by kid',
        path: ['nextPrivateKeyJwk', 'kid'],
      }),
  ],
  { error: 'auth.type must be none, bearer or smart-backend' },
);
export type EndpointAuthInput = z.infer<typeof EndpointAuthInput>;

/** The URL, or undefined when it does not parse (zod runs every refinement, even after `url()` failed). */
const parsedUrl = (u: string): URL | undefined => (URL.canParse(u) ? new URL(u) : undefined);

const BaseUrl = z
  .url({ protocol: /^https?$/, error: 'baseUrl must be an http(s) URL' })
  .max(2000)
  .refine((u) => !parsedUrl(u)?.search && !parsedUrl(u)?.hash, { error: 'baseUrl must not have a query or fragment' })
  .refine((u) => !parsedUrl(u)?.username && !parsedUrl(u)?.password, { error: 'baseUrl must not carry credentials' });

export const EndpointLimits = {
  maxRequestsPerSecond: z.number().positive().max(1000, { error: 'maxRequestsPerSecond must be at most 1000' }),
  maxConcurrency: z.int().min(1).max(64, { error: 'maxConcurrency must be between 1 and 64' }),
};

/** The `sub` of the tokens the EHR uses to call this service (`ehr` role): scopes it to its cases. */
const InboundSubject = z
  .string({ error: 'inboundSubject must be text' })
  .trim()
  .min(1, { error: 'inboundSubject must not be empty' })
  .max(255, { error: 'inboundSubject must be at most 255 characters' })
  .meta({ description: "The `sub` of the tokens this EHR uses to call the service with the `ehr` role: it then sees only the cases this endpoint is a source or recipient of. `null` on PATCH unbinds it." });

/** See `EndpointConnection.rebaseNextLinks`. */
const RebaseNextLinks = z.boolean({ error: 'rebaseNextLinks must be true or false' }).meta({
  description:
    "Follow a searchset's `next` links that name another origin (an EHR behind a reverse proxy that publishes its internal address, or http for https) " +
    "on this endpoint's own origin, path and query kept: requests still go to the baseUrl's origin only. Off: such links are refused and the query fails naming it.",
});

export const CreateEndpointBody = z.object({
  name: z.string().trim().min(1, { error: 'name is required' }).max(200),
  baseUrl: BaseUrl,
  auth: EndpointAuthInput,
  maxRequestsPerSecond: EndpointLimits.maxRequestsPerSecond.default(10),
  maxConcurrency: EndpointLimits.maxConcurrency.default(4),
  allowInsecureHttp: z.boolean().default(false).meta({ description: 'Allow http: and loopback addresses: sandboxes only.' }),
  rebaseNextLinks: RebaseNextLinks.default(false),
  inboundSubject: InboundSubject.optional(),
});
export type CreateEndpointBody = z.infer<typeof CreateEndpointBody>;

export const UpdateEndpointBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    baseUrl: BaseUrl.optional(),
    auth: EndpointAuthInput.optional(),
    maxRequestsPerSecond: EndpointLimits.maxRequestsPerSecond.optional(),
    maxConcurrency: EndpointLimits.maxConcurrency.optional(),
    allowInsecureHttp: z.boolean().optional(),
    rebaseNextLinks: RebaseNextLinks.optional(),
    inboundSubject: InboundSubject.nullable().optional(),
  })
  .strict()
  .refine((v) => Object.keys(v).length > 0, { error: 'send at least one field to change' });
export type UpdateEndpointBody = z.infer<typeof UpdateEndpointBody>;
