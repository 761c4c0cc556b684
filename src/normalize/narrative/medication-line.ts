/**
 * The line of a MedicationRequest or MedicationStatement: the drug (also from a contained
 * Medication), every dosage step (its text, else what its structured parts say), the request's
 * intent when it is not an order, and the status.
 * @see https://hl7.org/fhir/R4/medicationrequest.html
 * @see https://hl7.org/fhir/R4/dosage.html
 * @see https://hl7.org/fhir/R4/datatypes.html#Timing
 * @packageDocumentation
 */
import type { Dosage, FhirResource, MedicationRequest, MedicationStatement, Timing } from 'fhir/r4';
import { ccText, isObject, joinParts, listOf, quantityText, rangeText, type ResourceLookup } from './concept';

/**
 * The drug's name: the medicationCodeableConcept, else the Medication referenced — contained in the
 * request (`#med0320`) or an entry of the bundle (`byUrl`) — else the reference's display.
 * @see https://hl7.org/fhir/R4/references.html#contained
 */
function medicationName(r: MedicationRequest | MedicationStatement, byUrl: ResourceLookup): string | undefined {
  if (r.medicationCodeableConcept) return ccText(r.medicationCodeableConcept);
  const ref = isObject(r.medicationReference) ? r.medicationReference : undefined;
  const url = typeof ref?.reference === 'string' ? ref.reference : undefined;
  let target: FhirResource | undefined;
  if (url?.startsWith('#')) {
    const id = url.slice(1);
    target = listOf(r.contained).find((c) => isObject(c) && c.id === id);
  } else if (url !== undefined) target = byUrl.get(url);
  return (target?.resourceType === 'Medication' ? ccText(target.code) : undefined) ?? ref?.display;
}

/** Words of a Timing's periodUnit (UCUM units of time, R4 `units-of-time`). */
const UNIT_NAMES: Readonly<Record<string, readonly [each: string, one: string]>> = {
  s: ['every second', 'second'], min: ['every minute', 'minute'], h: ['hourly', 'hour'], d: ['daily', 'day'],
  wk: ['weekly', 'week'], mo: ['monthly', 'month'], a: ['yearly', 'year'],
};

/** How many times: "once", "twice", "3 times", "1–2 times". */
function times(frequency: number, max: number | undefined): string {
  if (max !== undefined && max !== frequency) return `${frequency}–${max} times`;
  return frequency === 1 ? 'once' : frequency === 2 ? 'twice' : `${frequency} times`;
}

/**
 * What a Timing's repeat says: "once weekly", "twice daily", "every 6 hours", "3 times every 2 days",
 * with its bounds ("for 8 wk") and count ("10 doses"); or its code's text ("BID"). None when it says nothing.
 * @see https://hl7.org/fhir/R4/datatypes-definitions.html#Timing.repeat
 */
function timingText(t: Timing | undefined): string | undefined {
  if (!isObject(t)) return undefined;
  const code = ccText(t.code);
  const rep = isObject(t.repeat) ? t.repeat : undefined;
  if (!rep) return code;
  let how: string | undefined;
  const unit = rep.periodUnit !== undefined ? UNIT_NAMES[rep.periodUnit] : undefined;
  if (rep.period !== undefined && unit) {
    const frequency = rep.frequency ?? 1;
    const period = rep.periodMax !== undefined && rep.periodMax !== rep.period ? `${rep.period}–${rep.periodMax}` : String(rep.period);
    if (period === '1') how = `${times(frequency, rep.frequencyMax)} ${unit[0]}`;
    else how = `${frequency === 1 && rep.frequencyMax === undefined ? '' : `${times(frequency, rep.frequencyMax)} `}every ${period} ${unit[1]}s`;
  } else if (rep.frequency !== undefined) how = `${times(rep.frequency, rep.frequencyMax)}`;
  const when = listOf(rep.when).filter((w) => typeof w === 'string');
  const at = listOf(rep.timeOfDay).filter((w) => typeof w === 'string');
  const bounds = quantityText(rep.boundsDuration);
  return joinParts([
    how ?? code,
    at.length > 0 ? `at ${at.join(', ')}` : undefined,
    when.length > 0 ? `(${when.join(', ')})` : undefined,
    bounds ? `for ${bounds}` : undefined,
    rep.count !== undefined ? `${rep.count} dose${rep.count === 1 ? '' : 's'}` : undefined,
  ], ' ') || undefined;
}

/**
 * One dosage step: its text when the source wrote one, else what its structured parts say — dose
 * (quantity or range), route, timing, "as needed" (for what) — e.g. "10 mg oral once weekly".
 */
function dosageStepText(d: Dosage): string | undefined {
  if (d.text) return d.text;
  const dr = listOf(d.doseAndRate).find((x) => isObject(x));
  const dose = dr ? quantityText(dr.doseQuantity) ?? rangeText(dr.doseRange) : undefined;
  const forWhat = d.asNeededBoolean === true ? undefined : ccText(d.asNeededCodeableConcept);
  const prn = d.asNeededBoolean === true ? 'as needed' : forWhat ? `as needed for ${forWhat}` : undefined;
  return joinParts([dose, ccText(d.route), timingText(d.timing), prn], ' ') || undefined;
}

/** Every dosage step, in the order given; "then" before a step of a later `sequence`. */
function dosageText(dosages: readonly Dosage[] | undefined): string | undefined {
  let out = '';
  let previous: number | undefined;
  for (const d of listOf(dosages)) {
    if (!isObject(d)) continue;
    const step = dosageStepText(d);
    if (step === undefined) continue;
    const sequence = typeof d.sequence === 'number' ? d.sequence : undefined;
    if (out === '') out = step;
    else out = `${out}; ${previous !== undefined && sequence !== undefined && sequence > previous ? 'then ' : ''}${step}`;
    previous = sequence;
  }
  return out || undefined;
}

/**
 * A request's intent when it is not `order` (a proposal or a plan is not a prescription): "intent: proposal".
 * @see https://hl7.org/fhir/R4/valueset-medicationrequest-intent.html
 */
function intentText(r: MedicationRequest | MedicationStatement): string | undefined {
  return r.resourceType === 'MedicationRequest' && typeof r.intent === 'string' && r.intent !== 'order' ? `intent: ${r.intent}` : undefined;
}

/** Drug, dosage steps, intent and status of a medication line (date first, added by the caller). */
export function medicationParts(r: MedicationRequest | MedicationStatement, byUrl: ResourceLookup): (string | undefined)[] {
  const dosages = r.resourceType === 'MedicationRequest' ? r.dosageInstruction : r.dosage;
  return [medicationName(r, byUrl), dosageText(dosages), intentText(r), r.status];
}
