import type { CapabilityStatement } from 'fhir/r4';

/** What we keep from a server's CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html). */
export interface EndpointCapabilities {
  readonly fhirVersion?: string;
  readonly software?: string;
  /**
   * The base URL the server believes it has (`implementation.url`): behind a reverse proxy that does
   * not tell it the public address, the internal one it also writes into its links (see `rebaseNextLinks`).
   */
  readonly implementationUrl?: string;
  /** Resource types with the search parameters and interactions the server declares. */
  readonly resources: Record<string, { searchParams: string[]; interactions: string[]; operations: string[]; conditionalCreate?: boolean }>;
  /** `Patient/$everything` is offered. */
  readonly patientEverything: boolean;
  /** Whole-system interactions (`transaction`, `batch`, …). */
  readonly systemInteractions: string[];
}

/** Summarises the first server `rest` entry of a CapabilityStatement. */
export function summarizeCapabilities(statement: CapabilityStatement): EndpointCapabilities {
  const rest = statement.rest?.find((r) => r.mode === 'server') ?? statement.rest?.[0];
  const resources: EndpointCapabilities['resources'] = {};
  for (const resource of rest?.resource ?? []) {
    if (!resource.type) continue;
    resources[resource.type] = {
      searchParams: (resource.searchParam ?? []).map((p) => p.name).filter((n): n is string => Boolean(n)),
      interactions: (resource.interaction ?? []).map((i) => i.code),
      operations: (resource.operation ?? []).map((o) => o.name),
      // `If-None-Exist` honoured (https://hl7.org/fhir/R4/http.html#ccreate): only then may a create be resent.
      ...(resource.conditionalCreate === true ? { conditionalCreate: true } : {}),
    };
  }
  const patientOps = resources.Patient?.operations ?? [];
  const systemOps = (rest?.operation ?? []).map((o) => `${o.name} ${o.definition}`);
  const patientEverything =
    patientOps.some((name) => name.replace(/^\$/, '') === 'everything') ||
    (rest?.resource ?? []).some(
      (r) => r.type === 'Patient' && (r.operation ?? []).some((o) => /Patient-everything/.test(o.definition ?? '')),
    ) ||
    systemOps.some((o) => /Patient-everything/.test(o));
  const implementationUrl = statement.implementation?.url;
  return {
    fhirVersion: statement.fhirVersion,
    software: statement.software?.name,
    ...(implementationUrl && /^https?:\/\//i.test(implementationUrl) && URL.canParse(implementationUrl) ? { implementationUrl } : {}),
    resources,
    patientEverything,
    systemInteractions: (rest?.interaction ?? []).map((i) => i.code),
  };
}
