/**
 * `allowInsecureHttp` on an endpoint or webhook registration permits `http:` URLs and loopback
 * addresses: for sandboxes and local development only. In production (`NODE_ENV=production`) patient
 * records and events must not travel in clear, so the registration is refused with a 400 naming the
 * field, whatever the URL.
 * @packageDocumentation
 */
import type { Config } from '../../config';
import { HttpProblem } from '../problem';

/** What the registration routes need to know of the configuration. */
export type InsecureHttpPolicy = Pick<Config, 'production'>;

/** Throws a 400 naming `allowInsecureHttp` when `body` asks for it in production. */
export function refuseInsecureHttpInProduction(config: InsecureHttpPolicy, body: { readonly allowInsecureHttp?: boolean | undefined }): void {
  if (!config.production || body.allowInsecureHttp !== true) return;
  const detail = 'allowInsecureHttp: not allowed in production (NODE_ENV=production); it permits http: and loopback addresses, for sandboxes only. Register the https URL.';
  throw new HttpProblem(400, 'Invalid request', detail, [{ field: 'allowInsecureHttp', pointer: '#/allowInsecureHttp', detail: 'not allowed in production' }]);
}
