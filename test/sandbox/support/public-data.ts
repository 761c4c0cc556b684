/**
 * The public FHIR test data under ../shared/data (read in place, never copied into the repo).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';

export const SHARED_FHIR_DIR = path.resolve(__dirname, '../../../../shared/data/fhir');

/** Absolute paths of the JSON files of one data set (`synthea-smart`, `inferno-uscore`, …). */
export function publicDataFiles(dataSet: string): string[] {
  const dir = path.join(SHARED_FHIR_DIR, dataSet);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => path.join(dir, name));
}

export function readBundle(file: string): Bundle {
  return JSON.parse(readFileSync(file, 'utf8')) as Bundle;
}

/** Number of resources per type in a Bundle's entries. */
export function countByType(bundle: Bundle): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of bundle.entry ?? []) {
    const type = (entry.resource as Resource | undefined)?.resourceType;
    if (type) {
      counts[type] = (counts[type] ?? 0) + 1;
    }
  }
  return counts;
}
