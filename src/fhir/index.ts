/**
 * Outbound FHIR R4 HTTP layer: one {@link FhirEndpointClient} per registered endpoint, with SMART
 * Backend Services auth, SSRF guard, retry policy, cross-process rate/concurrency limits and a
 * circuit breaker. See each module for the spec it follows.
 */
export { FhirEndpointClient } from './fhir-client';
export type { FhirClientDeps, FetchBinaryOptions, BinaryResult, ConditionalCreateResult, PageRequestOptions } from './fhir-client';
export type { PageReader, ResourceAsReceived, ScannedSearchPage, SearchPage } from './fhir-json';
export { scanSearchPage } from './fhir-json';
export type { EndpointAuth, EndpointConnection, SmartBackendAuthConfig } from './endpoint';
export { DEFAULT_SMART_SCOPE, DEFAULT_TIMEOUT_MS } from './endpoint';
export type {
  FhirClientEvent,
  FhirRequestKind,
  RequestEvent,
  RetryEvent,
  ThrottledEvent,
  TokenRefreshedEvent,
  CircuitOpenEvent,
} from './events';
export {
  FhirClientError,
  FhirHttpError,
  PermanentFhirError,
  FhirNetworkError,
  MalformedResponseError,
  OffOriginUrlError,
  UrlRefusedError,
  AttachmentTooLargeError,
  ResponseTooLargeError,
  CircuitOpenError,
  ClientRetiredError,
  RequestNotSentError,
  ServerRetryAfterError,
  SmartAuthError,
  isPermanentFhirError,
  isGoneError,
} from './errors';
export { RetryPolicy, DEFAULT_RETRY_POLICY } from './retry-policy';
export type { RetryDecision, RetryPolicyOptions, AttemptResult, RequestTraits } from './retry-policy';
export { seededRandom, fullJitterDelay } from './backoff';
export { parseRetryAfter } from './retry-after';
export { createAddressPolicy, defaultAddressPolicy, ALL_RANGE_KINDS } from './address-policy';
export type { AddressPolicy, AddressPolicyOptions, AddressRangeKind } from './address-policy';
export { assertAllowedEndpointUrl, assertSameOrigin, createGuardedLookup, insecureHttpAllowed } from './url-guard';
export type { UrlGuardOptions, HostResolver } from './url-guard';
export { RedisRateLimiter } from './rate-limiter';
export type { EndpointLimits, RateLimiterOptions, Lease } from './rate-limiter';
export { RedisCircuitBreaker } from './circuit-breaker';
export type { CircuitState, CircuitSnapshot, CircuitBreakerOptions } from './circuit-breaker';
export { SmartBackendAuth } from './smart-backend-auth';
export { ClientAssertionSigner } from './client-assertion';
export type { AuthStrategy } from './auth-strategy';
