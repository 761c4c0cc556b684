/**
 * A record pull is refused up front (422) when none of the case's ready sources is on a server that
 * speaks FHIR R4: every query would be refused at once anyway (`fhir-version.ts`), so the case
 * manager is told why now instead of through a pull that fails. With at least one R4 source the pull
 * starts; the other sources' queries fail at once, for good, naming the version, and the pull ends
 * partial, retriable once their endpoint speaks R4 again. As for report recipients.
 * @see https://hl7.org/fhir/R4/capabilitystatement-definitions.html#CapabilityStatement.fhirVersion
 * @packageDocumentation
 */
import type { EndpointRow } from '../endpoints/endpoint-repository';
import { fhirVersionProblem, unsupportedFhirVersion } from '../endpoints/fhir-version';

/**
 * @param endpoints the endpoints of the case's sources ready to pull, by id (as read for the pull's plan)
 * @throws HttpProblem 422 (`field: fhirVersion`) when every one is on a server declaring another FHIR version
 */
export function requireSomeR4Source(endpoints: ReadonlyMap<string, Pick<EndpointRow, 'capabilities'> | undefined>): void {
  const declared = [...endpoints.values()].map((endpoint) => unsupportedFhirVersion(endpoint?.capabilities));
  const first = declared[0];
  if (first === undefined || declared.some((d) => d === undefined)) return;
  throw fhirVersionProblem(
    first,
    `No record pull was started: every source of the case is on such a server (endpoint ${[...endpoints.keys()].join(', ')}). ` +
      'Read its capabilities again (POST /api/endpoints/{id}/capabilities) once it speaks R4, or add a source on an R4 server.',
  );
}
