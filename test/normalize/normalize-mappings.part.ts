/**
 * The shipped terminology rule data agrees with the fixture manifest and catalog: every local lab
 * code of care team B, with its unit conversion, and every condition coded two ways.
 */
import { CONDITIONS } from '../../src/fixtures/catalog/conditions';
import { LAB_PANELS } from '../../src/fixtures/catalog/labs';
import { APPLIED_EQUIVALENCES, loadTerminologyMappings } from '../../src/normalize/terminology';
import { convertUcum } from '../../src/normalize/units';
import { loadManifest } from '../fixtures/helpers';

const mappings = loadTerminologyMappings();
const manifest = loadManifest();
const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';

describe("care team B's local lab codes", () => {
  it.each(manifest.teamBLocalLabCodes.map((row) => [row.code, row] as const))('%s maps to its LOINC code and canonical unit', (_code, row) => {
    const targets = mappings.targets.get(`${row.system}|${row.code}`) ?? [];
    expect(targets.map((t) => [t.system, t.code, t.display])).toEqual([['http://loinc.org', row.loinc, row.loincDisplay]]);
    expect(APPLIED_EQUIVALENCES.has(targets[0]?.equivalence ?? '')).toBe(true);
    const rule = mappings.quantityRules.get(`${row.system}|${row.code}`);
    expect(rule?.unit).toBe(row.canonicalUnit);
    // the UCUM conversion from what B sends agrees with the manifest's factor (within its rounding)
    const from = row.ucum ?? mappings.ucumAliases.get(row.unit) ?? row.unit;
    if (from === row.canonicalUnit) {
      expect(row.factor).toBe(1); // nothing to convert (and UCUM refuses to convert arbitrary units such as m[IU]/L)
      return;
    }
    const converted = convertUcum(100, from, row.canonicalUnit, rule?.molecularWeight);
    expect('value' in converted ? converted.value / 100 : converted.error).toBeCloseTo(row.factor, 2);
  });

  it('maps every panel that has a LOINC code, and only those', () => {
    for (const panel of Object.values(LAB_PANELS)) {
      const targets = mappings.targets.get(`${manifest.teamBLocalLabCodes[0]?.system ?? ''}|${panel.localCode}`);
      expect(targets?.map((t) => t.code)).toEqual(panel.loinc ? [panel.loinc.code] : undefined);
    }
  });
});

describe('ICD-10-CM → SNOMED CT', () => {
  it.each(Object.entries(CONDITIONS))('%s: ICD-10-CM code gains the SNOMED CT code care team A uses', (_key, concept) => {
    const targets = mappings.targets.get(`${ICD10CM}|${concept.icd10cm.code}`) ?? [];
    expect(targets.filter((t) => APPLIED_EQUIVALENCES.has(t.equivalence)).map((t) => [t.system, t.code])).toEqual([['http://snomed.info/sct', concept.snomed.code]]);
  });

  it('covers every condition pair of the manifest overlaps', () => {
    const pairs = [...manifest.overlaps.duplicates, ...manifest.overlaps.nearMisses].filter((d) => d.resourceType === 'Condition');
    expect(pairs.length).toBeGreaterThan(0);
    for (const d of manifest.overlaps.duplicates.filter((x) => x.resourceType === 'Condition')) {
      expect(mappings.targets.get(`${ICD10CM}|${String(d.evidence['icd10cm'])}`)?.[0]?.code).toBe(String(d.evidence['snomed']));
    }
  });
});
