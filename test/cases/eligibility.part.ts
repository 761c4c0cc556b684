import { evaluateEligibility, patientAgeOn } from '../../src/cases/eligibility';
import { REASON_CODES } from '../../src/cases/eligibility-messages';
import { loadEligibilityRules } from '../../src/cases/eligibility-rules';
import type { Intake } from '../../src/cases/intake-schema';
import { validIntake } from './fixtures';

const rules = loadEligibilityRules();
const asOf = new Date('2026-03-10T15:00:00Z'); // Tuesday 10 March 2026, 11:00 in New York

function evaluate(change: (intake: Intake) => void, when: Date = asOf) {
  return evaluateEligibility(validIntake(change), rules, when);
}

function livingAt(address: Partial<Intake['patient']['address']>, drop: ('district')[] = []) {
  return (intake: Intake): void => {
    Object.assign(intake.patient.address, address);
    for (const key of drop) delete intake.patient.address[key];
  };
}

describe('an eligible request', () => {
  it('has no reasons', () => {
    expect(evaluate(() => undefined)).toEqual({ eligible: true, reasons: [], reasonCodes: [] });
  });

  it.each(rules.relationships.filter((r) => r.canConsentForMinor).map((r) => r.code))(
    'accepts %s for a child',
    (code) => {
      expect(evaluate((i) => (i.requester.relationship = code)).eligible).toBe(true);
    },
  );

  it('matches relationship codes whatever their case', () => {
    expect(evaluate((i) => (i.requester.relationship = 'mth')).eligible).toBe(true);
    expect(evaluate((i) => (i.requester.relationship = 'Guard')).eligible).toBe(true);
    expect(evaluate((i) => (i.requester.relationship = 'IN-LOCO-PARENTIS')).eligible).toBe(true);
  });
});

describe('urgent requests', () => {
  it('are refused with the 911 / emergency message', () => {
    expect(evaluate((i) => (i.urgent = true))).toEqual({
      eligible: false,
      reasonCodes: ['urgent'],
      reasons: [
        'You told us this request is urgent. An online second opinion takes several business days, so if Emma needs ' +
          'care now, call 911 or go to your nearest emergency department, and for an urgent medical question call ' +
          "Emma's own doctor.",
      ],
    });
  });
});

describe('who may ask', () => {
  it('refuses a grandparent, explaining that a parent or legal guardian must ask and what to choose instead', () => {
    expect(evaluate((i) => (i.requester.relationship = 'GRPRN'))).toEqual({
      eligible: false,
      reasonCodes: ['relationship-cannot-consent-for-minor'],
      reasons: [
        "A parent or legal guardian must ask for a second opinion for a child under 18, so we cannot accept this request from Emma's grandparent. " +
          "If a court has made you Emma's legal guardian, choose GUARD (guardian); if a parent has given you a power of attorney for Emma's health care, choose HPOWATT (healthcare power of attorney).",
      ],
    });
  });

  it('refuses a step-parent with the adoption / guardianship hint', () => {
    expect(evaluate((i) => (i.requester.relationship = 'STPPRN')).reasons).toEqual([
      "A parent or legal guardian must ask for a second opinion for a child under 18, so we cannot accept this request from Emma's step parent. " +
        "If you have adopted Emma, choose ADOPTP (adoptive parent); if you are Emma's legal guardian, choose GUARD (guardian).",
    ]);
  });

  it('refuses a sibling and a friend (no hint for a friend)', () => {
    expect(evaluate((i) => (i.requester.relationship = 'SIB')).reasons).toEqual([
      "A parent or legal guardian must ask for a second opinion for a child under 18, so we cannot accept this request from Emma's sibling. " +
        "If a court has made you Emma's legal guardian, choose GUARD (guardian).",
    ]);
    expect(evaluate((i) => (i.requester.relationship = 'FRND')).reasons).toEqual([
      "A parent or legal guardian must ask for a second opinion for a child under 18, so we cannot accept this request from Emma's unrelated friend.",
    ]);
  });

  it('uses the data-provided phrasing for the patient themself and a guardian ad litem', () => {
    expect(evaluate((i) => (i.requester.relationship = 'ONESELF')).reasons[0]).toBe(
      'A parent or legal guardian must ask for a second opinion for a child under 18, so we cannot accept this request from Emma directly. ' +
        "Please ask a parent or legal guardian to submit the request on Emma's behalf.",
    );
    expect(evaluate((i) => (i.requester.relationship = 'GUADLTM')).reasons[0]).toContain(
      "cannot accept this request from Emma's guardian ad litem. A guardian ad litem speaks for Emma in court",
    );
  });

  it.each(rules.relationships.filter((r) => !r.canConsentForMinor).map((r) => r.code))(
    'refuses %s for a child',
    (code) => {
      const result = evaluate((i) => (i.requester.relationship = code));
      expect(result.reasonCodes).toEqual(['relationship-cannot-consent-for-minor']);
      expect(result.reasons[0]).toMatch(/^A parent or legal guardian must ask for a second opinion for a child under 18/);
    },
  );

  it('refuses an unknown code, naming it', () => {
    expect(evaluate((i) => (i.requester.relationship = 'XYZ'))).toEqual({
      eligible: false,
      reasonCodes: ['relationship-unknown'],
      reasons: [
        'We do not recognize the relationship code "XYZ". Please choose your relationship to Emma from the list, ' +
          'for example MTH (mother), FTH (father) or GUARD (legal guardian).',
      ],
    });
  });

  it('requires the legal-authority attestation', () => {
    expect(evaluate((i) => (i.requester.attestsLegalAuthority = false))).toEqual({
      eligible: false,
      reasonCodes: ['legal-authority-not-attested'],
      reasons: ['You must confirm that you have the legal authority to make health care decisions for Emma before we can open this case.'],
    });
  });
});

describe("the patient's age on the request date (program time zone)", () => {
  // Turns 18 on 10 March 2026.
  const adult = (code: string) => (i: Intake) => {
    i.patient.birthDate = '2008-03-10';
    i.requester.relationship = code;
  };

  it('computes the age on the New York calendar date', () => {
    expect(patientAgeOn('2008-03-10', new Date('2026-03-10T03:59:00Z'), 'America/New_York')).toBe(17); // 9 March, 23:59
    expect(patientAgeOn('2008-03-10', new Date('2026-03-10T04:00:00Z'), 'America/New_York')).toBe(18); // 10 March, 00:00 EDT (DST began 8 March)
  });

  it('lets a parent ask the day before the 18th birthday', () => {
    expect(evaluate(adult('MTH'), new Date('2026-03-10T03:30:00Z')).eligible).toBe(true); // 9 March, 23:30 in New York
  });

  it('refuses a parent from the 18th birthday on, saying a guardian or power of attorney is needed', () => {
    expect(evaluate(adult('MTH'))).toEqual({
      eligible: false,
      reasonCodes: ['adult-patient-needs-guardian-or-poa'],
      reasons: [
        "Emma is 18 or older, so only Emma (choose ONESELF), a legal guardian or a person holding power of attorney for " +
          "Emma's health care can ask for this second opinion, and we cannot accept it from Emma's mother. If a court has " +
          "appointed you as Emma's guardian, choose GUARD (guardian); if you hold a health care power of attorney for Emma, " +
          'choose HPOWATT (healthcare power of attorney).',
      ],
    });
  });

  it.each(['ONESELF', 'GUARD', 'POWATT', 'HPOWATT', 'DPOWATT', 'SPOWATT', 'court-appointed-guardian', 'personal-representative'])(
    'accepts %s for an adult patient',
    (code) => {
      expect(evaluate(adult(code)).eligible).toBe(true);
    },
  );

  it.each(['FTH', 'ADOPTP', 'in-loco-parentis', 'GRPRN'])('refuses %s for an adult patient', (code) => {
    expect(evaluate(adult(code)).reasonCodes).toEqual(['adult-patient-needs-guardian-or-poa']);
  });

  it("takes the patient's age where the patient lives: in Honolulu the 18th birthday has not come yet when it has in New York", () => {
    const kai = (relationship: string) => (i: Intake): void => {
      i.patient.birthDate = '2009-03-10';
      Object.assign(i.patient.address, { line: ['1 Ala Moana Blvd'], city: 'Honolulu', state: 'HI', postalCode: '96814', country: 'US' });
      i.requester.relationship = relationship;
    };
    const eveningInHonolulu = new Date('2027-03-10T06:00:00Z'); // 20:00 on 9 March in Honolulu, 01:00 on 10 March in New York
    expect(evaluate(kai('ONESELF'), eveningInHonolulu).reasonCodes).not.toEqual([]);
    expect(evaluate(kai('MTH'), eveningInHonolulu).eligible).toBe(true);
    const nextMorning = new Date('2027-03-10T19:00:00Z'); // 09:00 on 10 March in Honolulu
    expect(evaluate(kai('ONESELF'), nextMorning).eligible).toBe(true);
    expect(evaluate(kai('MTH'), nextMorning).reasonCodes).toEqual(['adult-patient-needs-guardian-or-poa']);
  });

  it('takes the time zone from the options when given', () => {
    const lateEvening = new Date('2026-03-10T03:30:00Z'); // 9 March in New York, 10 March in UTC
    expect(evaluateEligibility(validIntake(adult('MTH')), rules, lateEvening).eligible).toBe(true);
    expect(evaluateEligibility(validIntake(adult('MTH')), rules, lateEvening, { timeZone: 'UTC' }).reasonCodes).toEqual([
      'adult-patient-needs-guardian-or-poa',
    ]);
  });
});

describe('where the family lives', () => {
  it('refuses addresses outside the United States', () => {
    const result = evaluate(livingAt({ line: ['100 Queen St W'], city: 'Toronto', state: 'ON', postalCode: 'M5H 2N2', country: 'Canada' }, ['district']));
    expect(result).toEqual({
      eligible: false,
      reasonCodes: ['outside-united-states'],
      reasons: [
        'Our Online Second Opinion program can only accept requests for patients who live in the United States, and the address you gave is in Canada.',
      ],
    });
  });

  it.each(['US', 'usa', 'United States', 'United States of America'])('treats country "%s" as the United States', (country) => {
    expect(evaluate(livingAt({ country })).eligible).toBe(true);
  });

  it('refuses excluded states with the reason', () => {
    expect(evaluate(livingAt({ city: 'Albany', state: 'NY', postalCode: '12207', district: 'Albany' }))).toEqual({
      eligible: false,
      reasonCodes: ['state-excluded'],
      reasons: ['We cannot accept requests for patients who live in New York, because our physicians are not licensed to give medical opinions there.'],
    });
    expect(evaluate(livingAt({ city: 'Seattle', state: 'WA', postalCode: '98101' }, ['district'])).reasonCodes).toEqual(['state-excluded']);
    expect(evaluate(livingAt({ city: 'San Juan', state: 'PR', postalCode: '00901' }, ['district'])).reasons).toEqual([
      'We cannot accept requests for patients who live in Puerto Rico, because our physicians are not licensed to give medical opinions there.',
    ]);
    expect(evaluate(livingAt({ city: 'APO', state: 'AE', postalCode: '09021' }, ['district'])).reasons).toEqual([
      'We cannot accept requests for patients who live in an Armed Forces Europe (APO/FPO) address, because the patient must live in a U.S. state where our physicians are licensed.',
    ]);
  });

  it('sends local families to a regular clinic visit (matched by county)', () => {
    expect(evaluate(livingAt({ city: 'Covington', state: 'KY', postalCode: '41011', district: 'Kenton County' }))).toEqual({
      eligible: false,
      reasonCodes: ['local-area'],
      reasons: [
        'Our Online Second Opinion program serves families who live outside our local area. Because Emma lives in northern ' +
          'Kentucky (Kenton County, KY), please book a regular clinic visit with our specialists instead.',
      ],
    });
  });

  it.each([
    ['kenton', 'KY'],
    ['KENTON COUNTY', 'KY'],
    ['  Boone   County ', 'KY'],
    ['Athens', 'OH'],
    ['Perry County', 'OH'],
    ['Perry', 'IN'],
    ['Vanderburgh County', 'IN'],
  ])('matches county "%s" in %s case-insensitively, with or without "County"', (district, state) => {
    // A ZIP outside every local prefix, so the county alone decides.
    expect(evaluate(livingAt({ state, district, postalCode: '37203' })).reasonCodes).toEqual(['local-area']);
  });

  it('does not match a county of the same name in another state', () => {
    expect(evaluate(livingAt({ city: 'Hazard', state: 'KY', district: 'Perry County', postalCode: '41701' })).eligible).toBe(true);
    expect(evaluate(livingAt({ city: 'Lebanon', state: 'TN', district: 'Boone', postalCode: '37087' })).eligible).toBe(true);
  });

  it.each([
    ['41011', 'KY', 'northern Kentucky'],
    ['41017-1234', 'KY', 'northern Kentucky'],
    ['45701', 'OH', 'southeast Ohio'],
    ['43701', 'OH', 'southeast Ohio'],
    ['45662', 'OH', 'southeast Ohio'],
    ['47708', 'IN', 'southwest Indiana'],
    ['47501', 'IN', 'southwest Indiana'],
  ])('matches ZIP %s (%s) by prefix when no county is given', (postalCode, state, region) => {
    const result = evaluate(livingAt({ postalCode, state }, ['district']));
    expect(result.reasonCodes).toEqual(['local-area']);
    expect(result.reasons[0]).toContain(`Because Emma lives in ${region} (ZIP code ${postalCode})`);
  });

  it.each([
    ['45229', 'OH', 'Cincinnati (southwest Ohio)'],
    ['43215', 'OH', 'Columbus (central Ohio)'],
    ['47401', 'IN', 'Bloomington (south-central Indiana)'],
    ['40202', 'KY', 'Louisville'],
    ['41101', 'KY', 'Ashland (northeast Kentucky)'],
  ])('serves ZIP %s (%s): %s is not in the local area', (postalCode, state) => {
    expect(evaluate(livingAt({ postalCode, state }, ['district'])).eligible).toBe(true);
  });
});

describe('several reasons at once', () => {
  it('lists them all, urgent first, in a fixed order', () => {
    const result = evaluate((i) => {
      i.urgent = true;
      i.requester.relationship = 'GRMTH';
      i.requester.attestsLegalAuthority = false;
      Object.assign(i.patient.address, { state: 'OH', postalCode: '45701', district: 'Athens County' });
    });
    expect(result.eligible).toBe(false);
    expect(result.reasonCodes).toEqual(['urgent', 'relationship-cannot-consent-for-minor', 'legal-authority-not-attested', 'local-area']);
    expect(result.reasons).toHaveLength(4);
    expect(result.reasons[0]).toMatch(/call 911/);
    expect(result.reasons[1]).toMatch(/from Emma's grandmother/);
    expect(result.reasons[3]).toMatch(/southeast Ohio \(Athens County, OH\)/);
  });

  it('reports an unknown code, an adult patient and a foreign address together', () => {
    const result = evaluate((i) => {
      i.patient.birthDate = '2000-01-01';
      i.requester.relationship = 'BOSS';
      Object.assign(i.patient.address, { country: 'MX', state: 'NL', postalCode: '64000' });
    });
    expect(result.reasonCodes).toEqual(['relationship-unknown', 'outside-united-states']);
  });

  it('only ever uses known reason codes, in the documented order', () => {
    const result = evaluate((i) => {
      i.urgent = true;
      i.requester.relationship = 'FRND';
      i.requester.attestsLegalAuthority = false;
      i.patient.address.state = 'NY';
    });
    const order = result.reasonCodes.map((c) => REASON_CODES.indexOf(c));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(result.reasonCodes).toEqual(['urgent', 'relationship-cannot-consent-for-minor', 'legal-authority-not-attested', 'state-excluded']);
  });
});
