/**
 * Everything a route handler needs from its server.
 */
import type { FhirRouter } from '@medplum/fhir-router';
import type { ReferenceCache } from '../operations/resource-references';
import type { PagingStyle } from '../paging/page-links';
import type { SearchSnapshotStore } from '../paging/search-snapshots';
import type { SandboxRepository } from '../repository/sandbox-repository';
import type { DeclaredSearchParameters } from '../search/declared-parameters';
import type { TokenEndpointOptions } from '../smart/token-endpoint';
import type { WireJsonCache } from './wire-json';

export type AuthMode = 'smart' | 'none';

export interface RouteContext {
  readonly name: string;
  readonly baseUrl: string;
  readonly tokenUrl: string;
  readonly auth: AuthMode;
  readonly paging: PagingStyle;
  readonly defaultCount: number;
  readonly maxCount: number;
  /** Per type, the only search parameters the server declares and takes (others: 400); see declared-parameters.ts. */
  readonly searchParams?: DeclaredSearchParameters;
  readonly repo: SandboxRepository;
  readonly router: FhirRouter;
  readonly snapshots: SearchSnapshotStore;
  readonly wire: WireJsonCache;
  readonly references: ReferenceCache;
  readonly tokenEndpoint: TokenEndpointOptions;
  readonly now: () => number;
  /** The CapabilityStatement JSON (built once). */
  capabilityJson(): string;
}
