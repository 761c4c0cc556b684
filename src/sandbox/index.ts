/**
 * Sandbox FHIR R4 servers for tests, benchmarks and the demo. See README.md in this folder.
 */
export { startSandboxServer } from './sandbox-server';
export type { SandboxServer, SandboxServerOptions } from './sandbox-server';
export { startSandboxWorld, WORLD_SERVER_NAMES, DEFAULT_CLIENT_ID } from './sandbox-world';
export type { SandboxWorld, SandboxWorldOptions, WorldServerName } from './sandbox-world';
export { SandboxLoadError } from './load';
export type { LoadInput, LoadOptions, LoadResult } from './load';
export type { FaultAction, FaultRuleInput, RetryAfterFormat } from './faults/fault-types';
export type { FaultRegistry, FaultRule } from './faults/fault-registry';
export { parseFaultSpec, parseFaultFile } from './faults/fault-spec';
export type { ServerFaultRule } from './faults/fault-spec';
export type { RecordedRequest } from './observability/request-log';
export type { WrittenResource } from './observability/written-resources';
export type { AuthMode } from './http/route-context';
export type { PagingStyle } from './paging/page-links';
export { signClientAssertion, requestAccessToken, tokenRequestBody } from './smart/client-assertion';
export type { ClientAssertionInput, TokenResponse } from './smart/client-assertion';
export { generateClientKey, loadOrCreateClientCredentials, publicJwkOf } from './smart/client-keys';
export type { ClientKeyAlgorithm, SandboxClientCredentials } from './smart/client-keys';
export type { ClientRegistration } from './smart/client-registry';
