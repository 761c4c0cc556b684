/** The service version reported in the OpenAPI document and in FHIR meta.source. */
export const SERVICE_VERSION = '0.1.0';
