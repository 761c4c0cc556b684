import fs from 'node:fs';
import path from 'node:path';
import { loadDomainData } from '../../src/cases/domain-data';
import { loadEligibilityRules } from '../../src/cases/eligibility-rules';
import { defaultMappingsDir, MappingsError } from '../../src/cases/mappings-dir';
import { ADD_ON_CODES, loadPriceList } from '../../src/cases/prices';
import { tempDir } from '../support/temp-dir';

const repoMappings = path.resolve(__dirname, '../../mappings');

function tempMappings(files: Record<string, unknown>): string {
  const root = tempDir('mappings');
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(root, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return root;
}

function realEligibility(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(repoMappings, 'eligibility.json'), 'utf8')) as Record<string, unknown>;
}

describe('mappings directory', () => {
  it('defaults to the repository mappings/ folder, from source and from a compiled dist/src/cases path', () => {
    expect(defaultMappingsDir()).toBe(repoMappings);
    const fakeDist = path.resolve(__dirname, '../../dist/src/cases'); // need not exist
    expect(defaultMappingsDir(fakeDist)).toBe(repoMappings);
  });

  it('fails clearly when no mappings folder is found', () => {
    const empty = tempDir('nomappings');
    expect(() => defaultMappingsDir(empty)).toThrow(MappingsError);
    expect(() => defaultMappingsDir(empty)).toThrow(/No mappings\/ folder next to a package.json/);
  });
});

describe('shipped rule data', () => {
  it('loads and validates', () => {
    const domain = loadDomainData();
    expect(domain.eligibility.adultAge).toBe(18);
    expect(domain.eligibility.timeZone).toBe('America/New_York');
    expect(domain.eligibility.relationshipSystems.v3).toBe('http://terminology.hl7.org/CodeSystem/v3-RoleCode');
    expect(domain.prices.currency).toBe('USD');
    expect(domain.prices.base.fee).toBe(850);
    expect(domain.prices.addOns.map((a) => [a.code, a.fee])).toEqual([
      ['radiology-review', 350],
      ['pathology-review', 400],
    ]);
  });

  it('lists who can consent for a minor and for an adult', () => {
    const rules = loadEligibilityRules();
    const minor = rules.relationships.filter((r) => r.canConsentForMinor).map((r) => r.code);
    const adult = rules.relationships.filter((r) => r.canConsentForAdult).map((r) => r.code);
    expect(minor).toEqual([
      'MTH', 'FTH', 'PRN', 'NPRN', 'NMTH', 'NFTH', 'ADOPTP', 'ADOPTM', 'ADOPTF', 'GUARD',
      'POWATT', 'HPOWATT', 'DPOWATT', 'SPOWATT', 'in-loco-parentis', 'personal-representative', 'court-appointed-guardian',
    ]);
    expect(adult).toEqual([
      'GUARD', 'POWATT', 'HPOWATT', 'DPOWATT', 'SPOWATT', 'personal-representative', 'court-appointed-guardian', 'ONESELF',
    ]);
    for (const code of ['GRPRN', 'STPPRN', 'SIB', 'FRND', 'PRNFOST', 'GUADLTM']) {
      expect(rules.relationships.find((r) => r.code === code)).toMatchObject({ canConsentForMinor: false, canConsentForAdult: false });
    }
  });

  it('keeps local-area states out of the excluded list and documents its ZIP source', () => {
    const rules = loadEligibilityRules();
    expect(rules.localArea.regions.map((r) => [r.name, r.state])).toEqual([
      ['southeast Ohio', 'OH'],
      ['southwest Indiana', 'IN'],
      ['northern Kentucky', 'KY'],
    ]);
    expect(rules.localArea.$comment).toMatch(/USPS 3-digit Sectional Center Facility/);
    expect(rules.excludedStates.map((s) => s.state)).toEqual(['NY', 'WA', 'PR', 'GU', 'VI', 'AS', 'MP', 'AA', 'AE', 'AP']);
  });

  it('prices every add-on code exactly once', () => {
    expect(loadPriceList().addOns.map((a) => a.code).sort()).toEqual([...ADD_ON_CODES].sort());
  });
});

describe('invalid rule data fails loudly', () => {
  it('names a missing file', () => {
    const dir = tempMappings({});
    expect(() => loadEligibilityRules(dir)).toThrow(/Cannot read rule data .*eligibility\.json/);
  });

  it('names a JSON syntax error', () => {
    const dir = tempMappings({ 'prices.json': '{ "currency": ' });
    expect(() => loadPriceList(dir)).toThrow(/prices\.json is not valid JSON/);
  });

  it('rejects a typo in a key (strict objects)', () => {
    const data = realEligibility();
    data.adultAgee = 18;
    const dir = tempMappings({ 'eligibility.json': data });
    expect(() => loadEligibilityRules(dir)).toThrow(/adultAgee/);
  });

  it('rejects bad states, bad zones and bad ZIP ranges, naming each', () => {
    const data = realEligibility();
    data.timeZone = 'Ohio/Cincinnati';
    (data.excludedStates as Record<string, unknown>[]).push({ state: 'XX', name: 'Nowhere' });
    const regions = (data.localArea as { regions: Record<string, unknown>[] }).regions;
    (regions[0] as { zipPrefixes: unknown[] }).zipPrefixes.push({ from: '459', to: '45' });
    const dir = tempMappings({ 'eligibility.json': data });
    let message = '';
    try {
      loadEligibilityRules(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(MappingsError);
      message = (err as Error).message;
    }
    expect(message).toContain('timeZone: not an IANA time zone');
    // Rows named by their own name, so a person editing the file finds them.
    expect(message).toContain('excludedStates.10[name "Nowhere"].state: not a USPS state or territory code');
    expect(message).toMatch(/localArea\.regions\.0\[name "[^"]+"\]\.zipPrefixes\.2: .*same number of digits/);
  });

  it('rejects a state that is both excluded and local, and duplicate codes', () => {
    const data = realEligibility();
    (data.excludedStates as Record<string, unknown>[]).push({ state: 'KY', name: 'Kentucky' });
    const relationships = data.relationships as Record<string, unknown>[];
    relationships.push({ ...relationships[0], code: 'mth' });
    const dir = tempMappings({ 'eligibility.json': data });
    expect(() => loadEligibilityRules(dir)).toThrow(/KY is both excluded and part of the local area/);
    expect(() => loadEligibilityRules(dir)).toThrow(/relationships\.\d+\[code "mth"\]\.code: duplicate code mth/);
  });

  it('rejects prices that are not whole dollars, a non-USD currency or a missing add-on', () => {
    const base = { version: '1', currency: 'USD', base: { display: 'Opinion', fee: 850 } };
    const fractional = tempMappings({
      'prices.json': { ...base, addOns: [{ code: 'radiology-review', display: 'R', fee: 350.5 }, { code: 'pathology-review', display: 'P', fee: 400 }] },
    });
    expect(() => loadPriceList(fractional)).toThrow('addOns.0[code "radiology-review"].fee');
    const euros = tempMappings({ 'prices.json': { ...base, currency: 'EUR', addOns: [] } });
    expect(() => loadPriceList(euros)).toThrow(/currency/);
    const missing = tempMappings({ 'prices.json': { ...base, addOns: [{ code: 'radiology-review', display: 'R', fee: 350 }] } });
    expect(() => loadPriceList(missing)).toThrow(/add-on pathology-review must be priced exactly once \(found 0\)/);
    const unknown = tempMappings({
      'prices.json': { ...base, addOns: [{ code: 'genetics-review', display: 'G', fee: 500 }] },
    });
    expect(() => loadPriceList(unknown)).toThrow(/Add-on must be one of radiology-review, pathology-review/);
  });
});
