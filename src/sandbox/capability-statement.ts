/**
 * The server's CapabilityStatement (`GET [base]/metadata`): every R4 resource type with the
 * interactions and the search parameters this sandbox can actually evaluate (reference, token,
 * string, uri, date; not number, quantity, composite or special), `Patient/$everything`,
 * transaction and batch, and, with SMART on, the OAuth token endpoint.
 *
 * @see https://hl7.org/fhir/R4/capabilitystatement.html
 * @see https://hl7.org/fhir/smart-app-launch/conformance.html#declaring-support-for-oauth2-endpoints
 */
import type { CapabilityStatement, CapabilityStatementRestResource, CapabilityStatementRestSecurity } from '@medplum/fhirtypes';
import { getResourceTypes, getSearchParameters } from './fhir-definitions';
import type { DeclaredSearchParameters } from './search/declared-parameters';

export interface CapabilityOptions {
  readonly name: string;
  readonly baseUrl: string;
  readonly tokenUrl: string | undefined;
  readonly pagingStyle: string;
  readonly maxCount: number;
  /** Per type, the only search parameters declared (others of the type are left out). */
  readonly searchParams?: DeclaredSearchParameters;
}

const SEARCHABLE_TYPES = new Set(['reference', 'token', 'string', 'uri', 'date']);
const EVERYTHING = 'http://hl7.org/fhir/OperationDefinition/Patient-everything';

export function buildCapabilityStatement(options: CapabilityOptions): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    name: `SecondOpinionBridgeSandbox_${options.name.replace(/[^A-Za-z0-9]/g, '_')}`,
    title: `Second Opinion Bridge sandbox FHIR server "${options.name}"`,
    publisher: 'Second Opinion Bridge',
    description:
      `In-memory FHIR R4 test server (@medplum/fhir-router). Paging: ${options.pagingStyle} links; ` +
      `_count up to ${options.maxCount}. Search parameters of type number, quantity, composite and special, ` +
      `chained parameters and _has are not supported.`,
    software: { name: 'Second Opinion Bridge sandbox', version: '1' },
    implementation: { description: `Sandbox ${options.name}`, url: options.baseUrl },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        security: options.tokenUrl ? smartSecurity(options.tokenUrl) : undefined,
        resource: getResourceTypes().map((type) => resourceCapability(type, options.searchParams?.[type])),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        operation: [{ name: 'everything', definition: EVERYTHING }],
      },
    ],
  };
}

function resourceCapability(type: string, declared: readonly string[] | undefined): CapabilityStatementRestResource {
  const searchParam = Object.values(getSearchParameters(type))
    .filter((param) => SEARCHABLE_TYPES.has(param.type as string) && param.code !== '_compartment')
    .filter((param) => declared === undefined || declared.includes(param.code as string))
    .map((param) => ({
      name: param.code as string,
      type: param.type as 'token',
      definition: param.url,
    }));
  return {
    type: type as CapabilityStatementRestResource['type'],
    interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map((code) => ({
      code: code as 'read',
    })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchParam,
    operation: type === 'Patient' ? [{ name: 'everything', definition: EVERYTHING }] : undefined,
  };
}

function smartSecurity(tokenUrl: string): CapabilityStatementRestSecurity {
  return {
    cors: false,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
        text: 'SMART Backend Services (client_credentials, private_key_jwt RS384/ES384)',
      },
    ],
    extension: [
      {
        url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
        extension: [{ url: 'token', valueUri: tokenUrl }],
      },
    ],
  };
}
