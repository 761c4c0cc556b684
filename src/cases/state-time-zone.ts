/**
 * The time zone a patient's age is taken in: where the patient lives. A birthday arrives at midnight
 * there, not in the program's zone: at 8 pm in Honolulu on the eve of an 18th birthday it is already
 * the birthday in New York, and a minor's own request (ONESELF) would be taken, the parent's refused.
 *
 * A state that spans zones has its westernmost one, where the birthday arrives last: a patient is
 * an adult only once an adult everywhere in the state (Texas: El Paso's Mountain time; Florida: the
 * Panhandle's Central; Alaska: the Aleutians' Hawaii–Aleutian time). Armed Forces codes (AA, AE,
 * AP) name no place: the program's zone.
 * @see https://www.iana.org/time-zones
 * @packageDocumentation
 */
import type { MajorityAddress } from './adult-age';
import { isUnitedStates } from './us-places';

/** IANA zone by USPS code: the westernmost zone of each state, district and territory. */
const ZONE_BY_STATE: Readonly<Record<string, string>> = {
  AL: 'America/Chicago', AK: 'America/Adak', AZ: 'America/Phoenix', AR: 'America/Chicago', CA: 'America/Los_Angeles',
  CO: 'America/Denver', CT: 'America/New_York', DE: 'America/New_York', DC: 'America/New_York', FL: 'America/Chicago',
  GA: 'America/New_York', HI: 'Pacific/Honolulu', ID: 'America/Los_Angeles', IL: 'America/Chicago', IN: 'America/Chicago',
  IA: 'America/Chicago', KS: 'America/Denver', KY: 'America/Chicago', LA: 'America/Chicago', ME: 'America/New_York',
  MD: 'America/New_York', MA: 'America/New_York', MI: 'America/Chicago', MN: 'America/Chicago', MS: 'America/Chicago',
  MO: 'America/Chicago', MT: 'America/Denver', NE: 'America/Denver', NV: 'America/Los_Angeles', NH: 'America/New_York',
  NJ: 'America/New_York', NM: 'America/Denver', NY: 'America/New_York', NC: 'America/New_York', ND: 'America/Denver',
  OH: 'America/New_York', OK: 'America/Chicago', OR: 'America/Los_Angeles', PA: 'America/New_York', RI: 'America/New_York',
  SC: 'America/New_York', SD: 'America/Denver', TN: 'America/Chicago', TX: 'America/Denver', UT: 'America/Denver',
  VT: 'America/New_York', VA: 'America/New_York', WA: 'America/Los_Angeles', WV: 'America/New_York', WI: 'America/Chicago',
  WY: 'America/Denver',
  AS: 'Pacific/Pago_Pago', GU: 'Pacific/Guam', MP: 'Pacific/Saipan', PR: 'America/Puerto_Rico', VI: 'America/St_Thomas',
};

/** The zone a patient living at `address` has birthdays in; undefined outside the US or for a military address. */
export function patientTimeZone(address: MajorityAddress): string | undefined {
  if (!isUnitedStates(address.country) || address.state === undefined) return undefined;
  return ZONE_BY_STATE[address.state.trim().toUpperCase()];
}
