/**
 * Writes a searchset Bundle as one Buffer, from Bundle entries that are already serialized.
 *
 * @see https://hl7.org/fhir/R4/bundle.html#searchset
 */
import { randomUUID } from 'node:crypto';
import type { BundleLink, Resource } from '@medplum/fhirtypes';
import type { WireJsonCache } from './wire-json';

export interface SearchsetPage {
  readonly total: number;
  readonly links: readonly BundleLink[];
  readonly matches: readonly Resource[];
  readonly included: readonly Resource[];
  readonly lastUpdated: string;
}

const COMMA = Buffer.from(',');
const ENTRY_END = Buffer.from(']}');
const END = Buffer.from('}');

export function writeSearchset(wire: WireJsonCache, page: SearchsetPage): Buffer {
  const head =
    `{"resourceType":"Bundle","id":"${randomUUID()}","meta":{"lastUpdated":${JSON.stringify(page.lastUpdated)}},` +
    `"type":"searchset","total":${page.total},"link":${JSON.stringify(page.links)}`;
  const entries: Buffer[] = [
    ...page.matches.map((resource) => wire.matchEntry(resource)),
    ...page.included.map((resource) => Buffer.from(wire.entryJson(resource, 'include'), 'utf8')),
  ];
  if (entries.length === 0) {
    return Buffer.concat([Buffer.from(head, 'utf8'), END]);
  }
  const parts: Buffer[] = [Buffer.from(head + ',"entry":[', 'utf8')];
  entries.forEach((entry, index) => {
    if (index > 0) {
      parts.push(COMMA);
    }
    parts.push(entry);
  });
  parts.push(ENTRY_END);
  return Buffer.concat(parts);
}
