/**
 * DICOM value representations to FHIR primitives: DA/TM to `date`/`dateTime`, PN to name parts.
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#sect_6.2 (PS3.5 VRs)
 * @see https://hl7.org/fhir/R4/datatypes.html#dateTime
 * @packageDocumentation
 */

/** DA (`YYYYMMDD`, or the ACR-NEMA `YYYY.MM.DD`) to FHIR `date`; undefined when not a real date. */
export function dicomDateToFhir(da: string | undefined): string | undefined {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(da?.trim() ?? '');
  if (!m) return undefined;
  const [, y, mo, d] = m;
  const date = new Date(`${y}-${mo}-${d}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return undefined;
  return `${y}-${mo}-${d}`;
}

/**
 * Study date and time to FHIR `dateTime`. FHIR requires a time zone whenever a time is given, and DICOM
 * times are local: with Timezone Offset From UTC (0008,0201) the result is a full dateTime, without it
 * only the date is kept (the time would have to be guessed).
 */
export function dicomDateTimeToFhir(da: string | undefined, tm: string | undefined, offset: string | undefined): string | undefined {
  const date = dicomDateToFhir(da);
  if (!date) return undefined;
  const zone = /^([+-])(\d{2})(\d{2})$/.exec(offset?.trim() ?? '');
  const time = /^(\d{2}):?(\d{2})?:?(\d{2})?(?:\.(\d{1,6}))?$/.exec(tm?.trim() ?? '');
  if (!zone || !time) return date;
  // FHIR allows offsets up to ±13:59 and ±14:00 (DICOM's own range is -12:00..+14:00): another is no zone.
  const [zh, zm] = [Number(zone[2]), Number(zone[3])];
  if (zm > 59 || zh > 14 || (zh === 14 && zm !== 0)) return date;
  const [, hh, mm = '00', ss = '00', frac] = time;
  if (Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 60) return date;
  const fraction = frac ? `.${frac.padEnd(3, '0').slice(0, 3)}` : '';
  return `${date}T${hh}:${mm}:${ss === '60' ? '59' : ss}${fraction}${zone[1]}${zone[2]}:${zone[3]}`;
}

/** The parts of a PN value's first (alphabetic) component group. */
export interface PersonNameParts {
  readonly family: string;
  readonly given: readonly string[];
}

/** Splits PN `Family^Given^Middle^Prefix^Suffix[=ideographic=phonetic]` (PS3.5 §6.2.1). */
export function parsePersonName(pn: string): PersonNameParts {
  const alphabetic = pn.split('=')[0] ?? '';
  const [family = '', given = '', middle = ''] = alphabetic.split('^');
  const givenNames = [given, middle].flatMap((part) => part.split(/\s+/)).filter((p) => p.length > 0);
  return { family: family.trim(), given: givenNames };
}
