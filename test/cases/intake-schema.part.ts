import { z } from 'zod';
import { createIntakeSchema, INTAKE_LIMITS, intakeJsonSchema, IntakeSchema } from '../../src/cases/intake-schema';
import { validIntakeJson } from './fixtures';

type Json = Record<string, unknown>;

const fixedNow = new Date('2026-03-10T15:00:00Z');
const schema = createIntakeSchema({ now: () => fixedNow });

/** A valid intake with one change applied at a dotted path (undefined deletes the field). */
function withField(path: string, value: unknown): Json {
  const body = validIntakeJson();
  const keys = path.split('.');
  let target: Json = body;
  for (const key of keys.slice(0, -1)) target = target[key] as Json;
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete target[last];
  else target[last] = value;
  return body;
}

/** The issues as `path: message`. */
function issuesOf(body: unknown): string[] {
  const result = schema.safeParse(body);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('IntakeSchema: valid requests', () => {
  it('accepts the full example and keeps every field', () => {
    const parsed = schema.parse(validIntakeJson());
    expect(parsed).toEqual(validIntakeJson());
  });

  it('accepts the minimal request (optional fields absent)', () => {
    const body = validIntakeJson();
    const patient = body.patient as Json;
    delete patient.sex;
    delete (patient.address as Json).district;
    const requester = body.requester as Json;
    delete requester.phone;
    delete requester.email;
    delete (body.diagnosis as Json).codes;
    body.referringPhysician = { name: 'Dr. Smith' };
    const parsed = schema.parse(body);
    expect(parsed.patient.sex).toBeUndefined();
    expect(parsed.requester.email).toBeUndefined();
    expect(parsed.referringPhysician).toEqual({ name: 'Dr. Smith' });
  });

  it('trims strings and upper-cases the state', () => {
    const body = withField('patient.address.state', ' oh ');
    (body.patient as Json).name = { given: ['  Emma '], family: ' Example  ' };
    (body.requester as Json).email = '  maria@example.com ';
    (body.referringPhysician as Json).npi = ' 1234567893 ';
    const parsed = schema.parse(body);
    expect(parsed.patient.address.state).toBe('OH');
    expect(parsed.patient.name).toEqual({ given: ['Emma'], family: 'Example' });
    expect(parsed.requester.email).toBe('maria@example.com');
    expect(parsed.referringPhysician.npi).toBe('1234567893');
  });

  it('accepts ZIP+4 and non-US postal codes outside the US', () => {
    expect(issuesOf(withField('patient.address.postalCode', '45229-3026'))).toEqual([]);
    const abroad = validIntakeJson();
    (abroad.patient as Json).address = {
      line: ['10 Downing Street'],
      city: 'London',
      state: 'LN',
      postalCode: 'SW1A 2AA',
      country: 'GB',
    };
    expect(issuesOf(abroad)).toEqual([]);
    // No state abroad (FHIR Address.state is 0..1), or a region written out, kept as written.
    delete ((abroad.patient as Json).address as Json).state;
    expect(issuesOf(abroad)).toEqual([]);
    ((abroad.patient as Json).address as Json).state = 'Greater London';
    expect(schema.parse(abroad).patient.address.state).toBe('Greater London');
  });

  it('requires the state of a US address', () => {
    expect(issuesOf(withField('patient.address.state', undefined))).toEqual([
      'patient.address.state: State is required for a US address: its 2-letter code, like OH',
    ]);
  });

  it('accepts a birth date of today in the latest time zone, and one on 29 February', () => {
    expect(issuesOf(withField('patient.birthDate', '2026-03-10'))).toEqual([]);
    expect(issuesOf(withField('patient.birthDate', '2016-02-29'))).toEqual([]);
    // At 15:00 UTC it is already 11 March in Kiribati (UTC+14).
    expect(issuesOf(withField('patient.birthDate', '2026-03-11'))).toEqual([]);
  });

  it('keeps an unknown relationship code for eligibility to refuse', () => {
    expect(schema.parse(withField('requester.relationship', 'XYZ')).requester.relationship).toBe('XYZ');
    expect(schema.parse(withField('requester.relationship', 'in-loco-parentis')).requester.relationship).toBe(
      'in-loco-parentis',
    );
  });

  it('drops unknown properties instead of failing', () => {
    const body = { ...validIntakeJson(), extra: 'ignored' };
    expect(schema.parse(body)).not.toHaveProperty('extra');
  });
});

describe('IntakeSchema: errors name the field and the problem', () => {
  it.each<[string, unknown, string]>([
    ['patient.name.family', undefined, 'patient.name.family: Family name is required'],
    ['patient.name.family', '   ', 'patient.name.family: Family name must not be empty'],
    ['patient.name.family', 42, 'patient.name.family: Family name must be text'],
    ['patient.name.family', [], 'patient.name.family: Family name must be text'],
    ['patient.name.family', ['x'.repeat(200)], 'patient.name.family: Family name must be text'],
    ['patient.name.given', 'Emma', 'patient.name.given: Given names must be a list'],
    ['patient.name.given', [], 'patient.name.given: Given names must have at least 1 name'],
    ['patient.name.given', [''], 'patient.name.given.0: Given name must not be empty'],
    ['patient.birthDate', '2026-02-30', 'patient.birthDate: Birth date must be a real calendar date written as YYYY-MM-DD'],
    ['patient.birthDate', '03/10/2020', 'patient.birthDate: Birth date must be a real calendar date written as YYYY-MM-DD'],
    ['patient.birthDate', '2026-03-12', 'patient.birthDate: Birth date cannot be in the future'],
    ['patient.birthDate', '1899-12-31', 'patient.birthDate: Birth date must not be before 1900-01-01'],
    ['patient.birthDate', undefined, 'patient.birthDate: Birth date is required'],
    ['patient.sex', 'f', 'patient.sex: Sex must be one of male, female, other or unknown'],
    ['patient.address.state', 'Ohio', 'patient.address.state: State must be a 2-letter code, like OH'],
    ['patient.address.state', 'ZZ', 'patient.address.state: State "ZZ" is not a US state, territory or APO/FPO code'],
    ['patient.address.postalCode', '3720', 'patient.address.postalCode: Postal code must be a US ZIP code: 5 digits, or ZIP+4 like 45229-3026'],
    ['patient.address.postalCode', '37203-12', 'patient.address.postalCode: Postal code must be a US ZIP code: 5 digits, or ZIP+4 like 45229-3026'],
    ['patient.address.line', [], 'patient.address.line: Address lines must have at least 1 line'],
    ['patient.address.country', '', 'patient.address.country: Country must not be empty'],
    ['requester.relationship', 'mother of', 'requester.relationship: Relationship must be a relationship code, like MTH, FTH or GUARD'],
    ['requester.email', 'maria@', 'requester.email: Email must be a valid email address, like name@example.com'],
    ['requester.phone', 'call me', 'requester.phone: Phone may contain only digits, spaces, +, -, ., / and parentheses'],
    ['requester.phone', '555-01', 'requester.phone: Phone must have between 7 and 15 digits'],
    ['requester.attestsLegalAuthority', 'yes', 'requester.attestsLegalAuthority: Legal authority attestation must be true or false'],
    ['requester.attestsLegalAuthority', undefined, 'requester.attestsLegalAuthority: Legal authority attestation is required'],
    ['diagnosis.text', undefined, 'diagnosis.text: Diagnosis is required'],
    ['diagnosis.codes', [{ system: 'icd10', code: 'C71.6' }], 'diagnosis.codes.0.system: Code system must be a URI, like http://hl7.org/fhir/sid/icd-10-cm'],
    ['diagnosis.codes', [{ system: 'http://snomed.info/sct', code: '' }], 'diagnosis.codes.0.code: Code must not be empty'],
    ['history', '', 'history: History must not be empty'],
    ['reason', undefined, 'reason: Reason is required'],
    ['questions', [], 'questions: Questions must have at least 1 question'],
    ['questions', ['Fine?', '  '], 'questions.1: Question must not be empty'],
    ['questions', 'Is surgery needed?', 'questions: Questions must be a list'],
    ['urgent', 'no', 'urgent: Urgent must be true or false'],
    ['referringPhysician.name', undefined, 'referringPhysician.name: Referring physician name is required'],
    ['referringPhysician.npi', '1234567890', 'referringPhysician.npi: NPI is not valid: it must start with 1 or 2 and end with the correct check digit'],
    ['referringPhysician.npi', '12345', 'referringPhysician.npi: NPI must be exactly 10 digits'],
    ['referringPhysician', undefined, 'referringPhysician: Referring physician is required'],
    ['requester', undefined, 'requester: Requester is required'],
    ['patient.address', 'Main St', 'patient.address: Address must be an object'],
    ['patient.name', 'Emma Example', 'patient.name: Name must be an object with given and family'],
    ['diagnosis', 'cancer', 'diagnosis: Diagnosis must be an object with text'],
    ['diagnosis.codes', ['C71.6'], 'diagnosis.codes.0: Diagnosis code must be an object with system and code'],
  ])('%s = %j → %s', (path, value, expected) => {
    expect(issuesOf(withField(path, value))).toEqual([expected]);
  });

  it('enforces maximum lengths', () => {
    expect(issuesOf(withField('history', 'x'.repeat(INTAKE_LIMITS.history + 1)))).toEqual([
      `history: History must be at most ${INTAKE_LIMITS.history} characters`,
    ]);
    expect(issuesOf(withField('history', 'x'.repeat(INTAKE_LIMITS.history)))).toEqual([]);
    expect(issuesOf(withField('questions', Array.from({ length: 11 }, (_, i) => `Q${i}?`)))).toEqual([
      'questions: Questions must have at most 10 questions',
    ]);
    expect(issuesOf(withField('patient.name.family', 'x'.repeat(101)))).toEqual([
      'patient.name.family: Family name must be at most 100 characters',
    ]);
  });

  it('reports every problem at once', () => {
    const body = withField('urgent', undefined);
    (body.patient as Json).birthDate = 'soon';
    (body.requester as Json).email = 'nope';
    expect(issuesOf(body)).toEqual([
      'patient.birthDate: Birth date must be a real calendar date written as YYYY-MM-DD',
      'requester.email: Email must be a valid email address, like name@example.com',
      'urgent: Urgent is required',
    ]);
  });

  it('treats "USA" and "United States" as the US for ZIP checks', () => {
    const usa = withField('patient.address.country', 'USA');
    ((usa.patient as Json).address as Json).postalCode = 'ABC';
    expect(issuesOf(usa)).toEqual([
      'patient.address.postalCode: Postal code must be a US ZIP code: 5 digits, or ZIP+4 like 45229-3026',
    ]);
    const spelled = withField('patient.address.country', 'United States of America');
    ((spelled.patient as Json).address as Json).postalCode = '1234';
    expect(issuesOf(spelled)).toHaveLength(1);
  });

  it('rejects a body that is not an object', () => {
    expect(schema.safeParse(null).success).toBe(false);
    expect(schema.safeParse('intake').success).toBe(false);
  });
});

describe('IntakeSchema with the system clock', () => {
  it('rejects a birth date a year from now and accepts the fixture', () => {
    const nextYear = `${new Date().getUTCFullYear() + 1}-06-01`;
    expect(IntakeSchema.safeParse(withField('patient.birthDate', nextYear)).success).toBe(false);
    expect(IntakeSchema.safeParse(validIntakeJson()).success).toBe(true);
  });
});

describe('JSON Schema form (for the OpenAPI document)', () => {
  it('converts with z.toJSONSchema without throwing, in input and output mode', () => {
    expect(() => z.toJSONSchema(IntakeSchema)).not.toThrow();
    expect(() => z.toJSONSchema(IntakeSchema, { io: 'input' })).not.toThrow();
  });

  it('describes the contract: required fields, formats, enums and limits', () => {
    const json = intakeJsonSchema() as Json;
    expect(json.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(json.type).toBe('object');
    expect(json.required).toEqual([
      'patient',
      'requester',
      'diagnosis',
      'history',
      'reason',
      'questions',
      'urgent',
      'referringPhysician',
    ]);
    const props = json.properties as Record<string, Json>;
    const patient = props.patient as Json;
    const patientProps = patient.properties as Record<string, Json>;
    expect(patient.required).toEqual(['name', 'birthDate', 'address']);
    expect(patientProps.birthDate).toMatchObject({ type: 'string', format: 'date' });
    expect(patientProps.sex).toMatchObject({ enum: ['male', 'female', 'other', 'unknown'] });
    const address = patientProps.address as Json;
    // state and postalCode: required (a USPS code, a ZIP code) for a US address only, which the descriptions say; free text elsewhere.
    expect(address.required).toEqual(['line', 'city', 'country']);
    expect((address.properties as Record<string, Json>).state).toMatchObject({ type: 'string', maxLength: INTAKE_LIMITS.state });
    expect((address.properties as Record<string, Json>).state?.description).toMatch(/United States \(required there\)/);
    expect((address.properties as Record<string, Json>).postalCode).toMatchObject({ type: 'string', maxLength: INTAKE_LIMITS.postalCode });
    expect((address.properties as Record<string, Json>).postalCode?.description).toMatch(/United States \(required there\)/);
    expect(props.questions).toMatchObject({ type: 'array', minItems: 1, maxItems: 10 });
    expect(props.history).toMatchObject({ type: 'string', minLength: 1, maxLength: 20000 });
    const requester = (props.requester as Json).properties as Record<string, Json>;
    expect(requester.attestsLegalAuthority).toMatchObject({ type: 'boolean' });
    expect(typeof requester.relationship?.description).toBe('string');
    const npi = ((props.referringPhysician as Json).properties as Record<string, Json>).npi as Json;
    expect(npi).toMatchObject({ type: 'string', pattern: '^\\d{10}$' });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json); // plain JSON, serializable
  });
});

describe('IntakeSchema: text FHIR cannot carry', () => {
  it('refuses a control character other than tab, CR and LF, naming the field and the character', () => {
    expect(issuesOf(withField('history', 'Seen at\u000Bthe clinic'))).toEqual([
      'history: history holds a control character (U+000B) that FHIR text cannot carry; remove it (text pasted from a word processor often brings one)',
    ]);
    const questions = ['Is the dose right?', 'Page\u000Cbreak'];
    expect(issuesOf(withField('questions', questions)).map((m) => m.split(':')[0])).toEqual(['questions.1']);
    expect(issuesOf(withField('patient.name.family', 'Quill\u0007')).map((m) => m.split(':')[0])).toEqual(['patient.name.family']);
  });

  it('keeps tabs and line breaks', () => {
    expect(issuesOf(withField('history', 'Line one\r\nLine two\twith a tab'))).toEqual([]);
  });
});
