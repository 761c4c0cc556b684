/**
 * `GET [base]/.well-known/smart-configuration` for a Backend Services server.
 *
 * @see https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#discovery-requirements
 */
import { SUPPORTED_ASSERTION_ALGORITHMS } from './client-assertion-verifier';

export function smartConfiguration(tokenUrl: string): Record<string, unknown> {
  return {
    token_endpoint: tokenUrl,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: SUPPORTED_ASSERTION_ALGORITHMS,
    grant_types_supported: ['client_credentials'],
    scopes_supported: ['system/*.read', 'system/*.write', 'system/*.*', 'system/*.rs', 'system/*.cruds', 'system/Patient.rs', 'system/Observation.rs'],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}
