/**
 * Decoding of DICOM text by Specific Character Set (0008,0005).
 *
 * Only the VRs SH, LO, ST, LT, UT, UC and PN are affected; UIDs, codes (CS), dates and numbers are always
 * in the default repertoire. Single-byte sets and UTF-8 are decoded with `TextDecoder`; ISO 2022 code
 * extensions (value 1 `ISO 2022 IR …`, more sets invoked by escape sequences) are split at each escape
 * sequence and each run decoded with the set it selects: G0 (bytes < 0x80) and G1 (bytes ≥ 0x80).
 *
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part03.html#sect_C.12.1.1.2 (defined terms)
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#chapter_6 (PS3.5 §6.1)
 * @see https://dicom.nema.org/medical/dicom/current/output/html/part05.html#sect_H.3.1 (Japanese example)
 * @packageDocumentation
 */
import { TextDecoder } from 'node:util';

/** Decodes the bytes of one text value. */
export type TextDecode = (bytes: Uint8Array) => string;

/**
 * WHATWG encoding labels for the defined terms. `latin1` and `utf-8` are decoded by Buffer (exact
 * ISO 8859-1, and UTF-8); the others by `TextDecoder`.
 */
const SINGLE_VALUE: Readonly<Record<string, string>> = {
  '': 'latin1',
  'ISO_IR 6': 'latin1',
  'ISO_IR 100': 'latin1',
  'ISO_IR 101': 'iso-8859-2',
  'ISO_IR 109': 'iso-8859-3',
  'ISO_IR 110': 'iso-8859-4',
  'ISO_IR 144': 'iso-8859-5',
  'ISO_IR 127': 'iso-8859-6',
  'ISO_IR 126': 'iso-8859-7',
  'ISO_IR 138': 'iso-8859-8',
  'ISO_IR 148': 'iso-8859-9',
  'ISO_IR 203': 'iso-8859-15',
  'ISO_IR 166': 'windows-874',
  'ISO_IR 13': 'shift_jis',
  'ISO_IR 192': 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};

/** A character set of ISO 2022 code extensions, as a G0 or G1 decoder. */
type Iso2022Set = { readonly kind: 'single'; readonly label: string } | { readonly kind: 'jis0208' } | { readonly kind: 'jis0212' } | { readonly kind: 'multi'; readonly label: string };

const ASCII: Iso2022Set = { kind: 'single', label: 'latin1' };

/** Escape sequences (after ESC) of PS3.3 Table C.12-3/C.12-4, with the set and register they invoke. */
const ESCAPES: ReadonlyArray<{ readonly seq: string; readonly g: 0 | 1; readonly set: Iso2022Set }> = [
  { seq: '(B', g: 0, set: ASCII },
  { seq: '(J', g: 0, set: ASCII }, // JIS X 0201 Romaji: ASCII but for ¥ and ‾
  { seq: ')I', g: 1, set: { kind: 'single', label: 'shift_jis' } }, // JIS X 0201 Katakana (0xA1–0xDF)
  { seq: '$B', g: 0, set: { kind: 'jis0208' } },
  { seq: '$(D', g: 0, set: { kind: 'jis0212' } },
  { seq: '$)C', g: 1, set: { kind: 'multi', label: 'euc-kr' } },
  { seq: '$)A', g: 1, set: { kind: 'multi', label: 'gbk' } },
  { seq: '-A', g: 1, set: { kind: 'single', label: 'latin1' } },
  { seq: '-B', g: 1, set: { kind: 'single', label: 'iso-8859-2' } },
  { seq: '-C', g: 1, set: { kind: 'single', label: 'iso-8859-3' } },
  { seq: '-D', g: 1, set: { kind: 'single', label: 'iso-8859-4' } },
  { seq: '-L', g: 1, set: { kind: 'single', label: 'iso-8859-5' } },
  { seq: '-G', g: 1, set: { kind: 'single', label: 'iso-8859-6' } },
  { seq: '-F', g: 1, set: { kind: 'single', label: 'iso-8859-7' } },
  { seq: '-H', g: 1, set: { kind: 'single', label: 'iso-8859-8' } },
  { seq: '-M', g: 1, set: { kind: 'single', label: 'iso-8859-9' } },
  { seq: '-b', g: 1, set: { kind: 'single', label: 'iso-8859-15' } },
  { seq: '-T', g: 1, set: { kind: 'single', label: 'windows-874' } },
];

/** Initial G1 set of each `ISO 2022 IR …` defined term (G0 starts as ASCII, or JIS X 0208 for IR 87). */
const ISO2022_INITIAL: Readonly<Record<string, { g0: Iso2022Set; g1: Iso2022Set }>> = {
  'ISO 2022 IR 6': { g0: ASCII, g1: ASCII },
  'ISO 2022 IR 87': { g0: { kind: 'jis0208' }, g1: ASCII },
  'ISO 2022 IR 159': { g0: { kind: 'jis0212' }, g1: ASCII },
  'ISO 2022 IR 13': { g0: ASCII, g1: { kind: 'single', label: 'shift_jis' } },
  'ISO 2022 IR 149': { g0: ASCII, g1: { kind: 'multi', label: 'euc-kr' } },
  'ISO 2022 IR 58': { g0: ASCII, g1: { kind: 'multi', label: 'gbk' } },
  ...Object.fromEntries(
    ESCAPES.filter((e) => e.seq.startsWith('-')).map((e) => [`ISO 2022 IR ${irNumber(e.seq)}`, { g0: ASCII, g1: e.set }]),
  ),
};

function irNumber(seq: string): string {
  const byFinal: Record<string, string> = { '-A': '100', '-B': '101', '-C': '109', '-D': '110', '-L': '144', '-G': '127', '-F': '126', '-H': '138', '-M': '148', '-b': '203', '-T': '166' };
  return byFinal[seq] ?? '';
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const decoders = new Map<string, TextDecoder>();
function decoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/** True when {@link decoderFor} knows every value of this Specific Character Set. */
export function isKnownCharacterSet(specificCharacterSet: string | undefined): boolean {
  return terms(specificCharacterSet).every((t) => t in SINGLE_VALUE || t in ISO2022_INITIAL);
}

function terms(specificCharacterSet: string | undefined): string[] {
  const values = (specificCharacterSet ?? '').split('\\').map((v) => v.trim());
  return values.length === 0 ? [''] : values;
}

/**
 * The decoder for a Specific Character Set value (as read, possibly multi-valued with `\`). An absent
 * value means the default repertoire; an unknown one falls back to latin1 (check {@link isKnownCharacterSet}).
 */
export function decoderFor(specificCharacterSet: string | undefined): TextDecode {
  const all = terms(specificCharacterSet);
  const first = all[0] ?? '';
  const iso2022 = all.length > 1 || first.startsWith('ISO 2022');
  if (!iso2022) {
    const label = SINGLE_VALUE[first] ?? 'latin1';
    // Fast paths through Buffer: ISO 8859-1 proper (ISO_IR 100; the default repertoire is its ASCII half) and UTF-8.
    if (label === 'latin1') return (bytes) => asBuffer(bytes).toString('latin1');
    if (label === 'utf-8') return (bytes) => asBuffer(bytes).toString('utf8');
    return (bytes) => decoder(label).decode(bytes);
  }
  const initial = ISO2022_INITIAL[first] ?? { g0: ASCII, g1: ASCII };
  return (bytes) => decodeIso2022(bytes, initial.g0, initial.g1);
}

function decodeIso2022(bytes: Uint8Array, initialG0: Iso2022Set, initialG1: Iso2022Set): string {
  let g0 = initialG0;
  let g1 = initialG1;
  let out = '';
  let i = 0;
  let runStart = 0;
  const flush = (end: number): void => {
    if (end > runStart) out += decodeRun(bytes.subarray(runStart, end), g0, g1);
  };
  while (i < bytes.length) {
    if (bytes[i] !== 0x1b) {
      i += 1;
      continue;
    }
    flush(i);
    const escape = ESCAPES.find((e) => matches(bytes, i + 1, e.seq));
    if (!escape) {
      // Unknown escape sequence: drop the ESC byte and go on.
      i += 1;
      runStart = i;
      continue;
    }
    if (escape.g === 0) g0 = escape.set;
    else g1 = escape.set;
    i += 1 + escape.seq.length;
    runStart = i;
  }
  flush(bytes.length);
  return out;
}

function matches(bytes: Uint8Array, at: number, seq: string): boolean {
  for (let k = 0; k < seq.length; k++) if (bytes[at + k] !== seq.charCodeAt(k)) return false;
  return true;
}

/** Decodes a run without escapes: bytes < 0x80 with G0, bytes ≥ 0x80 with G1. */
function decodeRun(run: Uint8Array, g0: Iso2022Set, g1: Iso2022Set): string {
  let out = '';
  let start = 0;
  for (let i = 1; i <= run.length; i++) {
    const boundary = i === run.length || ((run[i] ?? 0) >= 0x80) !== ((run[start] ?? 0) >= 0x80);
    if (!boundary) continue;
    const part = run.subarray(start, i);
    out += (run[start] ?? 0) >= 0x80 ? decodeWith(part, g1) : decodeWith(part, g0);
    start = i;
  }
  return out;
}

function decodeWith(part: Uint8Array, set: Iso2022Set): string {
  switch (set.kind) {
    case 'single':
    case 'multi':
      return decoder(set.label).decode(part);
    case 'jis0208':
      // 7-bit JIS X 0208 pairs are EUC-JP with the high bit set.
      return decoder('euc-jp').decode(part.map((b) => b | 0x80));
    case 'jis0212': {
      // EUC-JP carries JIS X 0212 as 0x8F followed by the pair with the high bit set.
      const euc: number[] = [];
      for (let k = 0; k + 1 < part.length; k += 2) euc.push(0x8f, (part[k] ?? 0) | 0x80, (part[k + 1] ?? 0) | 0x80);
      return decoder('euc-jp').decode(Uint8Array.from(euc));
    }
  }
}
