import { checkIdentity, type CasePatient } from '../../src/imaging/identity';

/** The auditor's cases (/tmp/audit-uploads/ident.js): the case is Maria Garcia, born 2015-03-02, female. */
const maria: CasePatient = { family: 'Garcia', given: ['Maria'], birthDate: '2015-03-02', sex: 'female' };
const nameFlags = (patientName: string, patient: CasePatient = maria): string[] =>
  checkIdentity({ patientName, patientBirthDate: '20150302', patientSex: 'F' }, patient).mismatches;

describe('the file names the case child only when its first given name is one of hers', () => {
  it.each(['GARCIA^MARIA', 'Garcia Lopez^Maria', 'García^María', 'Garcia^Maria Ana'])('%s matches', (pn) => {
    expect(nameFlags(pn)).toEqual([]);
  });
  it.each(['Garcia^Ana Maria', 'Garcia^Jose Maria', 'Garcia^Mariana', 'Lopez^Maria'])('%s (a sibling, another child) is flagged', (pn) => {
    expect(nameFlags(pn)).toEqual(['patient name differs from the case patient']);
  });
  it("the case's first given name must come first: a middle name alone is flagged, as a sibling's first name could be", () => {
    const twoNames = { ...maria, given: ['Maria', 'Ana'] };
    expect(nameFlags('Garcia^Maria', twoNames)).toEqual([]);
    expect(nameFlags('Garcia^Maria Ana', twoNames)).toEqual([]);
    expect(nameFlags('Garcia^Ana', twoNames)).toEqual(['patient name: the given name in the file matches only a middle name of the case patient (a sibling?)']);
    expect(nameFlags('Garcia^Luisa Ana', twoNames)).toEqual(['patient name differs from the case patient']);
  });
});

describe("the audit's sibling: case Zinnia Quillon Marrowvale", () => {
  const zinnia: CasePatient = { family: 'Marrowvale', given: ['Zinnia', 'Quillon'], birthDate: '2017-03-14', sex: 'female' };
  const flagsOf = (patientName: string, patient: CasePatient = zinnia) => checkIdentity({ patientName, patientBirthDate: '20170314', patientSex: 'F' }, patient);
  it('Marrowvale^Quillon with the same birth date is flagged: the given name matches only her middle name', () => {
    const check = flagsOf('Marrowvale^Quillon');
    expect(check.matches).toBe(false);
    expect(check.flags).toEqual([{ field: 'name', problem: 'middle-name-only', inFile: 'Marrowvale^Quillon', expected: 'Marrowvale^Zinnia Quillon' }]);
    // Log-safe: no name in the sentence.
    expect(check.mismatches).toEqual(['patient name: the given name in the file matches only a middle name of the case patient (a sibling?)']);
    expect(check.mismatches.join(' ')).not.toMatch(/Quillon|Zinnia|Marrowvale/);
    // The same when the intake writes both names in one given string.
    expect(flagsOf('Marrowvale^Quillon', { ...zinnia, given: ['Zinnia Quillon'] }).flags.map((f) => f.problem)).toEqual(['middle-name-only']);
  });
  it.each(['Marrowvale^Zinnia', 'MARROWVALE^ZINNIA QUILLON', 'Marrowvale^Zinnia^Quillon', 'Marrowvale^Zinnia Q'])('%s (given, or given and middle) passes', (pn) => {
    expect(flagsOf(pn).mismatches).toEqual([]);
    expect(flagsOf(pn, { ...zinnia, given: ['Zinnia Quillon'] }).mismatches).toEqual([]);
  });
  it('another first name altogether is still a mismatch', () => {
    expect(flagsOf('Marrowvale^Orla').flags.map((f) => f.problem)).toEqual(['mismatch']);
  });
});

describe('the alphabetic component group decides when it is not empty (PS3.5 §6.2.1.2)', () => {
  it('flags another child with the case child in a later group', () => {
    expect(nameFlags('Other^Kid=Garcia^Maria')).toEqual(['patient name differs from the case patient']);
  });
  it('reads the later groups when the alphabetic one is empty, or when the intake writes the name in their script', () => {
    expect(nameFlags('=Garcia^Maria')).toEqual([]);
    expect(nameFlags('Yamada^Tarou=山田^太郎', { ...maria, family: '山田', given: ['太郎'] })).toEqual([]);
  });
});

describe('punctuation raises no false alarm', () => {
  it.each([
    ["O'Brien", 'Maria', 'OBRIEN^MARIA'],
    ['Garcia-Lopez', 'Maria', 'GARCIALOPEZ^MARIA'],
    ['Garcia', 'Mary-Kate', 'GARCIA^MARYKATE'],
    ['Garcia', 'Mary-Kate', 'Garcia^Mary-Kate'],
  ])('case %s, %s matches file %s', (family, given, pn) => {
    expect(nameFlags(pn, { ...maria, family, given: [given] })).toEqual([]);
  });
});
