/**
 * The mark of a coding the terminology mapping appended beside the source's own (`terminology.ts`),
 * read where a later step must tell the two apart (`units.ts` takes back appended codings that a
 * value kept as reported contradicts; the source's codings are never changed).
 * @packageDocumentation
 */
import { isRecord } from '../util/is-record';

/** Extension on an appended coding: the ConceptMap (`url|version`) it was mapped by. */
export const MAPPED_CODING_EXTENSION = 'https://second-opinion.example.org/fhir/StructureDefinition/mapped-coding';

/** Whether `coding` carries the {@link MAPPED_CODING_EXTENSION} mark (appended by the mapping). */
export function isMappedCoding(coding: unknown): boolean {
  const extensions = isRecord(coding) ? coding['extension'] : undefined;
  return Array.isArray(extensions) && extensions.some((e: unknown) => isRecord(e) && e['url'] === MAPPED_CODING_EXTENSION);
}
