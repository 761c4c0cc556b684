import type { Patient } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import { demographicQuery, exactDemographicMatches } from '../../src/pull/patient-match';
import { fixtureIntake } from '../support/fixture-child';

/**
 * The exact check behind matching a child by name and birth date: a server's search matches given
 * names by prefix (https://hl7.org/fhir/R4/search.html#string) or ignores parameters, so the
 * candidates it answers are checked again here, whole names, ignoring case and accents.
 */
const BIRTH_DATE = '2016-04-02';
const intakeFor = (given: string[], family = 'Twinning'): Intake => {
  const base = fixtureIntake();
  return { ...base, patient: { ...base.patient, name: { family, given }, birthDate: BIRTH_DATE } };
};
const patient = (id: string, names: Patient['name'], birthDate = BIRTH_DATE): Patient => ({ resourceType: 'Patient', id, name: names, birthDate });
const ids = (intake: Intake, patients: Patient[]): string[] => exactDemographicMatches(intake, patients).map((p) => p.id ?? '');

describe('exactDemographicMatches', () => {
  it('refuses a candidate whose given name only begins with the child’s', () => {
    expect(ids(intakeFor(['Sam']), [patient('samantha', [{ family: 'Twinning', given: ['Samantha'] }])])).toEqual([]);
  });

  it('keeps the candidate with the same given name, family name and birth date, ignoring case and accents', () => {
    const candidates = [
      patient('zoe', [{ family: 'TWINNÍNG', given: ['Zoë', 'Maria'] }]),
      patient('zoe-other-day', [{ family: 'Twinning', given: ['Zoe'] }], '2016-04-03'),
      patient('zoe-other-family', [{ family: 'Twining', given: ['Zoe'] }]),
    ];
    expect(ids(intakeFor(['zoe']), candidates)).toEqual(['zoe']);
  });

  it('matches a given name written with a hyphen or as two given names', () => {
    expect(ids(intakeFor(['Mary Ann']), [patient('hyphen', [{ family: 'Twinning', given: ['Mary-Ann'] }])])).toEqual(['hyphen']);
    expect(ids(intakeFor(['Mary Ann']), [patient('two', [{ family: 'Twinning', given: ['Mary', 'Ann'] }])])).toEqual(['two']);
    expect(ids(intakeFor(['Mary Ann']), [patient('mary', [{ family: 'Twinning', given: ['Mary'] }])])).toEqual([]);
  });

  it('needs the family and the given name on the same HumanName', () => {
    const split = patient('split', [
      { use: 'official', family: 'Twinning', given: ['Samantha'] },
      { use: 'old', family: 'Other', given: ['Sam'] },
    ]);
    expect(ids(intakeFor(['Sam']), [split])).toEqual([]);
    const nickname = patient('nickname', [
      { use: 'official', family: 'Twinning', given: ['Samuel'] },
      { use: 'nickname', family: 'Twinning', given: ['Sam'] },
    ]);
    expect(ids(intakeFor(['Sam']), [nickname])).toEqual(['nickname']);
  });
});

describe('demographicQuery', () => {
  it('escapes the names as FHIR search values: a comma in a name is not a list of two names (https://hl7.org/fhir/R4/search.html#escaping)', () => {
    const base = fixtureIntake();
    const intake: Intake = { ...base, patient: { ...base.patient, name: { family: 'Quill, Jr', given: ['Ada$'] }, birthDate: '2016-01-02' } };
    expect(demographicQuery(intake)).toEqual({ family: 'Quill\\, Jr', given: 'Ada\\$', birthdate: 'eq2016-01-02', _count: '20' });
  });
});
