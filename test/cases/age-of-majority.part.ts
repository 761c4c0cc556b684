/**
 * The age of majority follows the patient's state (`adultAgeByState` in mappings/eligibility.json):
 * 19 in Alabama and Nebraska, 21 in Mississippi, `adultAge` (18) elsewhere. Through the real API,
 * on a fresh PostgreSQL database; the rule data's validation through its loader.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadEligibilityRules } from '../../src/cases/eligibility-rules';
import type { Intake } from '../../src/cases/intake-schema';
import { startCaseManagerService } from '../support/case-manager';
import { startForFile } from '../support/for-file';
import { sampleIntake } from '../support/intake';
import type { TestService } from '../support/service';
import { tempDir } from '../support/temp-dir';

let svc: TestService;
let token: string;

startForFile(() => startCaseManagerService({}, 'cm-age'), (s) => ({ svc, cm: token } = s));

/** A birth date `years` years and about a month ago: the patient is `years` old, far from a birthday. */
function bornYearsAgo(years: number): string {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() - 30);
  d.setUTCFullYear(d.getUTCFullYear() - years);
  return d.toISOString().slice(0, 10);
}

const HOMES = {
  AL: { line: ['1 Court Square'], city: 'Montgomery', state: 'AL', postalCode: '36104', country: 'US' },
  NE: { line: ['1819 Farnam St'], city: 'Omaha', state: 'NE', postalCode: '68183', country: 'US' },
  MS: { line: ['200 S Lamar St'], city: 'Jackson', state: 'MS', postalCode: '39201', country: 'US' },
  CO: sampleIntake().patient.address,
} as const;

interface Eligibility {
  eligible: boolean;
  reasons: string[];
  reasonCodes: string[];
}

async function open(state: keyof typeof HOMES, age: number, relationship: string): Promise<Eligibility> {
  const base = sampleIntake();
  const intake: Intake = {
    ...base,
    patient: { ...base.patient, birthDate: bornYearsAgo(age), address: { ...HOMES[state], line: [...HOMES[state].line] } },
    requester: { ...base.requester, relationship },
  };
  const res = await svc.request('POST', '/api/cases', { token, body: intake });
  expect(res.status).toBe(201);
  // The decision itself (the rules' version it carries is tested with the intake API).
  const { rulesVersion: _version, ...decision } = ((await res.json()) as { eligibility: Eligibility & { rulesVersion?: string } }).eligibility;
  return decision;
}

describe('age of majority by the patient’s state (POST /api/cases)', () => {
  it('lets a mother ask for a 19- or 20-year-old in Mississippi (a minor there until 21)', async () => {
    expect(await open('MS', 19, 'MTH')).toEqual({ eligible: true, reasons: [], reasonCodes: [] });
    expect(await open('MS', 20, 'MTH')).toEqual({ eligible: true, reasons: [], reasonCodes: [] });
  });

  it('refuses a 19-year-old in Mississippi asking for herself, naming 21', async () => {
    const result = await open('MS', 19, 'ONESELF');
    expect(result.reasonCodes).toEqual(['relationship-cannot-consent-for-minor']);
    expect(result.reasons[0]).toContain('for a child under 21,');
  });

  it('needs a guardian or power of attorney for a 21-year-old in Mississippi, naming 21', async () => {
    const result = await open('MS', 21, 'MTH');
    expect(result.reasonCodes).toEqual(['adult-patient-needs-guardian-or-poa']);
    expect(result.reasons[0]).toMatch(/^Zinnia is 21 or older, /);
  });

  it.each(['AL', 'NE'] as const)('treats an 18-year-old in %s as a minor and a 19-year-old as an adult, naming 19', async (state) => {
    expect((await open(state, 18, 'FTH')).eligible).toBe(true);
    const herself = await open(state, 18, 'ONESELF');
    expect(herself.reasonCodes).toEqual(['relationship-cannot-consent-for-minor']);
    expect(herself.reasons[0]).toContain('for a child under 19,');
    const adult = await open(state, 19, 'FTH');
    expect(adult.reasonCodes).toEqual(['adult-patient-needs-guardian-or-poa']);
    expect(adult.reasons[0]).toMatch(/^Zinnia is 19 or older, /);
    expect((await open(state, 19, 'ONESELF')).eligible).toBe(true);
  });

  it('keeps adultAge (18) in every other state', async () => {
    const adult = await open('CO', 18, 'MTH');
    expect(adult.reasonCodes).toEqual(['adult-patient-needs-guardian-or-poa']);
    expect(adult.reasons[0]).toMatch(/^Zinnia is 18 or older, /);
    const minor = await open('CO', 17, 'ONESELF');
    expect(minor.reasons[0]).toContain('for a child under 18,');
  });
});

describe('adultAgeByState in the rule data', () => {
  const repoFile = path.resolve(__dirname, '../../mappings/eligibility.json');
  const withOverrides = (overrides: unknown): string => {
    const data = JSON.parse(fs.readFileSync(repoFile, 'utf8')) as Record<string, unknown>;
    data.adultAgeByState = overrides;
    const dir = tempDir('mappings-age');
    fs.writeFileSync(path.join(dir, 'eligibility.json'), JSON.stringify(data));
    return dir;
  };

  it('ships AL 19, NE 19, MS 21 beside adultAge 18', () => {
    const rules = loadEligibilityRules();
    expect(rules.adultAge).toBe(18);
    expect(rules.adultAgeByState).toEqual({ AL: 19, NE: 19, MS: 21 });
  });

  it('is optional: a rule file without it keeps adultAge everywhere', () => {
    const data = JSON.parse(fs.readFileSync(repoFile, 'utf8')) as Record<string, unknown>;
    delete data.adultAgeByState;
    const dir = tempDir('mappings-age');
    fs.writeFileSync(path.join(dir, 'eligibility.json'), JSON.stringify(data));
    expect(loadEligibilityRules(dir).adultAgeByState).toEqual({});
  });

  it.each([
    [{ XX: 19 }, /adultAgeByState\.XX/],
    [{ ms: 21 }, /adultAgeByState\.ms/],
    [{ Mississippi: 21 }, /adultAgeByState\.Mississippi/],
    [{ MS: 20.5 }, /adultAgeByState\.MS/],
    [{ MS: '21' }, /adultAgeByState\.MS/],
    [{ MS: 0 }, /adultAgeByState\.MS/],
  ])('refuses %j, naming it', (overrides, named) => {
    expect(() => loadEligibilityRules(withOverrides(overrides))).toThrow(named);
  });
});
