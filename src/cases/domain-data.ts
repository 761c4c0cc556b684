/**
 * All rule data of the case domain, loaded once at start-up.
 * @packageDocumentation
 */
import { loadEligibilityRules, type EligibilityRules } from './eligibility-rules';
import { defaultMappingsDir } from './mappings-dir';
import { loadPriceList, type PriceList } from './prices';
import { loadSpecialtyMatching, type SpecialtyMatching } from '../review/specialty-matching';

/** The validated contents of `mappings/`. */
export interface DomainData {
  readonly eligibility: EligibilityRules;
  readonly prices: PriceList;
  /** Diagnosis codes → reviewing specialty (`mappings/specialty-matching.json`). */
  readonly specialtyMatching: SpecialtyMatching;
}

/**
 * Loads and validates every rule file; fails fast with a {@link MappingsError} naming the file and problems.
 * @param dir - the mappings directory; defaults to the `mappings/` folder at the package root
 */
export function loadDomainData(dir: string = defaultMappingsDir()): DomainData {
  return { eligibility: loadEligibilityRules(dir), prices: loadPriceList(dir), specialtyMatching: loadSpecialtyMatching(dir) };
}
