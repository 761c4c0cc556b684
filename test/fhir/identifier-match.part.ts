import { carriesIdentifier, identifierToken, parseIdentifierToken } from '../../src/fhir/identifier-match';

describe('carriesIdentifier: a search hit is ours only when it says so itself', () => {
  const mrn = { system: 'urn:oid:1.2.36.146.595.217.0.1', value: 'A|12' };

  it('reads a token as FHIR search writes it (the value may hold a bar)', () => {
    expect(parseIdentifierToken(`${mrn.system}|${mrn.value}`)).toEqual(mrn);
    expect(parseIdentifierToken('12345')).toEqual({ system: '', value: '12345' });
  });

  it('matches identifier or masterIdentifier on system and value exactly', () => {
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: [{ system: 'other', value: 'x' }, mrn] }, mrn)).toBe(true);
    expect(carriesIdentifier({ resourceType: 'DocumentReference', masterIdentifier: mrn }, mrn)).toBe(true);
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: [{ system: mrn.system, value: 'a|12' }] }, mrn)).toBe(false);
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: [{ system: 'other', value: mrn.value }] }, mrn)).toBe(false);
    // What a server that ignored the parameter sends back: someone else, or nothing that says who.
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: [{ system: mrn.system, value: '99' }] }, mrn)).toBe(false);
    expect(carriesIdentifier({ resourceType: 'Patient' }, mrn)).toBe(false);
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: 'not an array' }, mrn)).toBe(false);
    // A token without a system matches the value in any system.
    expect(carriesIdentifier({ resourceType: 'Patient', identifier: [{ system: 'any', value: '12345' }] }, { system: '', value: '12345' })).toBe(true);
  });
});

describe('identifierToken: the search value, escaped as FHIR search reads it', () => {
  it('escapes backslash, comma, dollar and bar in the system and the value (https://hl7.org/fhir/R4/search.html#escaping)', () => {
    expect(identifierToken({ system: 'urn:mrn', value: '12,34' })).toBe('urn:mrn|12\\,34');
    expect(identifierToken({ system: 'urn:mrn', value: 'A|12' })).toBe('urn:mrn|A\\|12');
    expect(identifierToken({ system: 'urn:x$y', value: 'a\\b' })).toBe('urn:x\\$y|a\\\\b');
    expect(identifierToken({ system: '', value: '1,2' })).toBe('1\\,2');
    expect(identifierToken({ system: 'http://hospital.example.org/mrn', value: 'MRN-0042' })).toBe('http://hospital.example.org/mrn|MRN-0042');
  });
});
