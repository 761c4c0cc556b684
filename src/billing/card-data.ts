/**
 * Refusing payment card data.
 *
 * Payments are taken by the hospital's card processor; this service records only the processor's
 * reference. Whatever a client sends, a value that looks like a card number (PAN) or a field named
 * like card data (CVV, expiry, track data, PIN) is refused before anything is stored, and the
 * answer names the field without echoing its value.
 *
 * A value "looks like a PAN" when it holds 13–19 digits that pass the Luhn check, or 15 or 16
 * digits starting like a major card brand (3, 4, 5, 6 or 2) even when the Luhn check fails (a
 * mistyped card number is still one). The digits are looked for inside each run of digits (single
 * spaces or dashes allowed between digits), not only as the whole run: a card number followed by its
 * security code or expiry (`4111 1111 1111 1111 123`, `4111-1111-1111-1111 0926`) makes a longer
 * run that is not a card number as a whole. So every span of consecutive digit groups of the run
 * (split at its separators) laid out as a card number is written and holding 13–19 digits is checked, and the start of an unbroken group
 * longer than a card number (a card number with its code glued on; see
 * {@link startsWithGluedCardNumber} for why no other window is tried).
 * @packageDocumentation
 */

/** Field names (lower case, letters and digits only) that only card data would use. */
const CARD_FIELD_NAMES: ReadonlySet<string> = new Set([
  'pan', 'primaryaccountnumber', 'cardnumber', 'cardno', 'cardnum', 'ccnumber', 'ccnum', 'creditcard', 'creditcardnumber', 'debitcardnumber',
  'cvv', 'cvv2', 'cvc', 'cvc2', 'cid', 'csc', 'cav2', 'securitycode', 'cardsecuritycode', 'cardverificationvalue', 'cardverificationcode',
  'expiry', 'expirydate', 'expiration', 'expirationdate', 'expdate', 'expmonth', 'expyear', 'cardexpiry', 'cardexpiration',
  'track1', 'track2', 'trackdata', 'magstripe', 'magneticstripe', 'pin', 'pinblock',
]);

const DIGIT_RUN = /\d(?:[ -]?\d)*/g;

/** Luhn (mod 10) check over a string of digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function brandLike(digits: string): boolean {
  return (digits.length === 15 && /^3[47]/.test(digits)) || (digits.length === 16 && /^(4|5[1-5]|2[2-7]|6)/.test(digits));
}

const MIN_PAN_DIGITS = 13;
const MAX_PAN_DIGITS = 19;

/** Whether a string of 13–19 digits passes for a card number (Luhn, or brand-like). */
function cardLike(digits: string): boolean {
  return digits.length >= MIN_PAN_DIGITS && digits.length <= MAX_PAN_DIGITS && (passesLuhn(digits) || brandLike(digits));
}

/**
 * Whether digit groups are laid out as a card number is written: in fours, the last group shorter
 * or not (4-4-4-4, 4-4-4-4-3, 4-4-4-1), or the American Express and Diners layouts (4-6-5, 4-6-4).
 * Two phone numbers side by side (617-555-1234 617-555-9876) are not: their spans of 13–19 digits
 * failed the brand and Luhn checks too rarely (most pairs were refused).
 */
function cardLayout(lengths: readonly number[]): boolean {
  const [a, b, c] = lengths;
  if (lengths.length === 3 && a === 4 && b === 6 && (c === 5 || c === 4)) return true;
  return lengths.every((n, i) => (i < lengths.length - 1 ? n === 4 : n >= 1 && n <= 4));
}

/**
 * Whether a run of digits with single spaces or dashes between groups holds a card number: the
 * whole run, one group, or a span of consecutive groups in a card's layout ({@link cardLayout}) with
 * 13–19 digits that passes for one ({@link cardLike}), or a group that starts with one with digits
 * glued on ({@link startsWithGluedCardNumber}).
 */
function runHoldsCardNumber(run: string): boolean {
  const groups = run.split(/[ -]/);
  if (cardLike(groups.join(''))) return true;
  for (let first = 0; first < groups.length; first += 1) {
    if (startsWithGluedCardNumber(groups[first] ?? '')) return true;
    let digits = '';
    const lengths: number[] = [];
    for (let last = first; last < groups.length && digits.length < MAX_PAN_DIGITS; last += 1) {
      const group = groups[last] ?? '';
      digits += group;
      lengths.push(group.length);
      if ((lengths.length === 1 || cardLayout(lengths)) && cardLike(digits)) return true;
    }
  }
  return false;
}

/**
 * Whether an unbroken group longer than a card number begins with one, its security code or expiry
 * typed onto it (`4111111111111111123`): a 15- or 16-digit start that passes the Luhn check and
 * starts like a major brand. Both are required here, and no window inside the group is tried:
 * any 13 digits pass the Luhn check one time in ten, and a bank's long trace number or a wire
 * reference (15–20 digits in `processorReference`) must not be refused as card data half the time.
 */
function startsWithGluedCardNumber(group: string): boolean {
  if (group.length <= 16) return false;
  return [15, 16].some((length) => {
    const digits = group.slice(0, length);
    return passesLuhn(digits) && brandLike(digits);
  });
}

/** True when `text` holds a digit run that looks like (or holds) a payment card number. */
export function looksLikeCardNumber(text: string): boolean {
  for (const match of text.matchAll(DIGIT_RUN)) {
    if (match[0].replace(/[ -]/g, '').length < MIN_PAN_DIGITS) continue;
    if (runHoldsCardNumber(match[0])) return true;
  }
  return false;
}

/** True when a field name is one only card data would use (`cvv`, `card_number`, `expiryDate`, …). */
export function isCardFieldName(name: string): boolean {
  return CARD_FIELD_NAMES.has(name.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

/** One place in a request body that holds (or is named like) card data. */
export interface CardDataFinding {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * Every place in `value` (any JSON) that holds card data: fields named like card data, strings
 * with a card-like digit run, integers of 13–19 digits.
 */
export function findCardData(value: unknown, path: readonly (string | number)[] = []): CardDataFinding[] {
  const name = path.length > 0 ? String(path[path.length - 1]) : '(body)';
  if (typeof value === 'string') {
    return looksLikeCardNumber(value)
      ? [{ path, message: `${name} looks like a payment card number; card data must never be sent here. Record the card processor's reference instead.` }]
      : [];
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) && Math.abs(value) >= 1e12
      ? [{ path, message: `${name} looks like a payment card number; card data must never be sent here.` }]
      : [];
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => findCardData(item, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) =>
      isCardFieldName(key)
        ? [{ path: [...path, key], message: `${key} is card data, which this service never accepts or stores; the card processor keeps it.` }]
        : findCardData(item, [...path, key]),
    );
  }
  return [];
}
