import { loadTerminologyMappings } from '../../src/normalize/terminology';
import { normalizeObservationUnits, UCUM_SYSTEM } from '../../src/normalize/units';

/** Care team B's local lab code system (its rules in mappings/terminology). */
export const B_LAB = 'http://care-team-b.example.org/fhir/CodeSystem/lab';
/** The mappings of the repository, loaded once. */
export const mappings = loadTerminologyMappings();

/** Normalizes the units of `observation` in place; the warnings as `code: message`. */
export function run(observation: Record<string, unknown>) {
  const warnings: string[] = [];
  const converted = normalizeObservationUnits(observation, mappings, (code, message) => void warnings.push(`${code}: ${message}`));
  return { observation, converted, warnings };
}

/** A Quantity with `unit`, and UCUM `code` (the unit itself unless given; none when `undefined`). */
export const q = (value: number, unit: string, code: string | undefined = unit) => ({ value, unit, ...(code === undefined ? {} : { system: UCUM_SYSTEM, code }) });
