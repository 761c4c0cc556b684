import { uuidV5 as caseUuidV5 } from '../../src/cases/fhir-ids';
import { importedFullUrl, importedResourceId, normalizeBaseUrl, sourceResourceUrl, URL_NAMESPACE, uuidBytes, uuidV5, uuidV5Urn } from '../../src/normalize/ids';

describe('UUID v5 (RFC 4122 §4.3)', () => {
  it('matches reference values (Python uuid.uuid5)', () => {
    expect(uuidV5('http://python.org/')).toBe('4c565f0d-3f5a-5890-b41b-20cf47701c5e');
    expect(uuidV5('python.org', uuidBytes('6ba7b810-9dad-11d1-80b4-00c04fd430c8'))).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
    expect(uuidV5('https://example.org/fhir/Patient/Adán')).toBe('d25ea847-645e-5502-ab8d-d2fdef2531f8'); // UTF-8 name
    // Longer than the reused scratch buffer (3,000 UTF-8 bytes of ä plus the URL): hashed the other way, same answer.
    expect(uuidV5(`https://example.org/fhir/DocumentReference/${'ä'.repeat(1500)}`)).toBe('48dc1dbc-43f7-5e17-a72a-034a185190d9');
  });

  it('agrees with the project implementation in src/cases/fhir-ids.ts', () => {
    for (const name of ['a', 'https://x.example.org/r4/Observation/1', 'ü/ß/€'.repeat(30)]) {
      expect(uuidV5(name)).toBe(caseUuidV5(name, URL_NAMESPACE));
    }
  });

  it('sets version 5 and the RFC 4122 variant', () => {
    const id = uuidV5('anything');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('as a urn:uuid, is the same uuid after the prefix', () => {
    for (const name of ['http://python.org/', 'https://x.example.org/r4/Observation/1', 'ü/ß/€'.repeat(30)]) {
      expect(uuidV5Urn(name)).toBe(`urn:uuid:${uuidV5(name)}`);
    }
    // One call's characters are not changed by the next (they are written into one reused buffer).
    const first = uuidV5('first');
    uuidV5Urn('second');
    expect(first).toBe(caseUuidV5('first', URL_NAMESPACE));
  });

  it('rejects a malformed name space', () => {
    expect(() => uuidBytes('not-a-uuid')).toThrow(RangeError);
  });
});

describe('imported resource ids', () => {
  it('hash the absolute URL [base]/[type]/[id] in the URL name space', () => {
    expect(sourceResourceUrl('https://fhir.care-team-a.example.org/r4', 'Observation', 'abc')).toBe('https://fhir.care-team-a.example.org/r4/Observation/abc');
    expect(importedResourceId('https://fhir.care-team-a.example.org/r4', 'Observation', 'abc')).toBe('50f0b15b-38e8-5c15-903d-3f80b925c5ae');
    expect(importedFullUrl('https://fhir.care-team-a.example.org/r4', 'Observation', 'abc')).toBe('urn:uuid:50f0b15b-38e8-5c15-903d-3f80b925c5ae');
  });

  it('are deterministic, ignore trailing slashes of the base, and differ by base, type and id', () => {
    const base = 'https://fhir.example.org/r4';
    expect(importedFullUrl(base, 'Patient', '1')).toBe(importedFullUrl(`${base}//`, 'Patient', '1'));
    expect(normalizeBaseUrl(`${base}/`)).toBe(base);
    const all = new Set([
      importedFullUrl(base, 'Patient', '1'),
      importedFullUrl('https://other.example.org/r4', 'Patient', '1'),
      importedFullUrl(base, 'Observation', '1'),
      importedFullUrl(base, 'Patient', '2'),
    ]);
    expect(all.size).toBe(4);
  });
});
