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
  it('either of two given names of the case may come first', () => {
    const twoNames = { ...maria, given: ['Maria', 'Ana'] };
    expect(nameFlags('Garcia^Ana', twoNames)).toEqual([]);
    expect(nameFlags('Garcia^Luisa Ana', twoNames)).toEqual(['patient name differs from the case patient']);
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
