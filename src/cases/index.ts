/**
 * The pure case domain of Second Opinion Bridge: intake contract, eligibility,
 * quote, lifecycle, SLA clock and FHIR face, plus the loaders of their rule data
 * in `mappings/`.
 * @packageDocumentation
 */
export * from './intake-schema';
export * from './npi';
export * from './us-places';
export * from './zoned-date';
export * from './mappings-dir';
export * from './eligibility-rules';
export * from './eligibility-messages';
export * from './service-area';
export * from './eligibility';
export * from './prices';
export * from './pricing';
export * from './domain-data';
export * from './lifecycle';
export * from './business-calendar';
export * from './sla';
export * from './fhir-ids';
export * from './fhir-codes';
export * from './fhir-face';
