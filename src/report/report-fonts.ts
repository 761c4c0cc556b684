/**
 * The fonts of the PDFs (the opinion report and the payment receipt). PDF's standard 14 fonts only
 * know WinAnsi (about Latin-1), so a name like "Adán" works but "王小明" or "Łukasz Żółć" would
 * not: the PDFs embed TrueType fonts (subset to the glyphs used, through fontkit) — DejaVu Sans for
 * Latin, Greek and Cyrillic, Droid Sans Fallback for Chinese and Japanese (and the Hanja of Korean),
 * and a NanumGothic subset ("SOB Hangul") for Hangul, which Droid Sans Fallback lacks: the fallbacks
 * are used glyph by glyph, in that order, where DejaVu lacks one (see `embed-fonts.ts`).
 *
 * The subsets committed under `assets/fonts/` (see its LICENSES.md) are the default; operators may
 * point `REPORT_FONT_PATH`, `REPORT_BOLD_FONT_PATH` and `REPORT_FALLBACK_FONT_PATH` at other TTF files
 * (the Hangul subset is always the committed one, tried after the configured fallback). No font of
 * the machine is used. {@link unprintableCharacter} is the same coverage, asked before a text is
 * accepted (the opinion's schema), so what is accepted is what prints.
 *
 * pdf-lib 1.17's subsetter (fontkit's TTFSubset) copies each glyph record as is and, when the
 * subset's glyph data is under 64 KB, writes a short `loca` (offsets stored halved): a font whose
 * records have odd lengths (fontTools' default when subsetting) comes out misaligned and viewers
 * draw blank glyphs. Such a font is flagged here ({@link LoadedFont.subsettable}) and embedded whole.
 * @see https://pdf-lib.js.org/docs/api/classes/pdfdocument#embedfont
 * @see https://learn.microsoft.com/en-us/typography/opentype/spec/loca
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Font } from '@pdf-lib/fontkit';
import { logger } from '../log';
import { fontkit } from './fontkit';
import { unprintableIn } from './text-layout';

/** Paths of the three report fonts (any may be left to the default). */
export interface ReportFontPaths {
  readonly regular?: string;
  readonly bold?: string;
  readonly fallback?: string;
}

/** A font file read once per process, with its character coverage. */
export interface LoadedFont {
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Whether pdf-lib can subset it (every `glyf` record of even length); else it is embedded whole. */
  readonly subsettable: boolean;
  /**
   * Whether the font has a glyph for this code point. The first call parses the font (fontkit).
   * @throws ReportFontError naming the variable to set when fontkit cannot parse it
   */
  has(codePoint: number): boolean;
}

/** The report fonts, read and ready to embed. */
export interface ReportFonts {
  readonly regular: LoadedFont;
  readonly bold: LoadedFont;
  readonly fallback: LoadedFont;
  /** Hangul (`assets/fonts/SOBHangul-subset.ttf`), tried after `fallback`; absent without an assets/fonts folder. */
  readonly hangul?: LoadedFont;
}

/** The fallbacks in the order they are tried for a character the regular or bold font lacks. */
export function fallbackChain(fonts: ReportFonts): LoadedFont[] {
  return fonts.hangul ? [fonts.fallback, fonts.hangul] : [fonts.fallback];
}

/** Thrown when a report font cannot be found or read; names the variable to set. */
export class ReportFontError extends Error {
  override readonly name = 'ReportFontError';
}

const DEFAULT_FILES = { regular: 'DejaVuSans-subset.ttf', bold: 'DejaVuSans-Bold-subset.ttf', fallback: 'DroidSansFallback-subset.ttf' } as const;
const HANGUL_FILE = 'SOBHangul-subset.ttf';
const VARIABLES = { regular: 'REPORT_FONT_PATH', bold: 'REPORT_BOLD_FONT_PATH', fallback: 'REPORT_FALLBACK_FONT_PATH' } as const;

/** `assets/fonts` of the repository or image: the nearest ancestor folder holding package.json and assets/fonts. */
export function defaultFontDir(startDir: string = __dirname): string | undefined {
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, 'assets', 'fonts');
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Offset and length of the sfnt table `tag`, if the font has one. */
function table(view: DataView, tag: string): { offset: number; length: number } | undefined {
  const count = view.getUint16(4);
  for (let i = 0; i < count; i++) {
    const record = 12 + 16 * i;
    const name = String.fromCharCode(view.getUint8(record), view.getUint8(record + 1), view.getUint8(record + 2), view.getUint8(record + 3));
    if (name === tag) return { offset: view.getUint32(record + 8), length: view.getUint32(record + 12) };
  }
  return undefined;
}

/** sfnt versions of a single TrueType or OpenType font: 1.0, Apple's `true`, and `OTTO` (CFF outlines). */
const SFNT_VERSIONS = new Set([0x00010000, 0x74727565, 0x4f54544f]);

/**
 * Whether `bytes` look like a single TrueType/OpenType font, checked without fontkit (which parses it
 * when a character is first asked about): an sfnt version, a table directory whose tables all lie in
 * the file, and the tables a font the report can draw with needs — `cmap` and `head`, and outlines
 * (`glyf` with `loca`, or CFF).
 * @see https://learn.microsoft.com/en-us/typography/opentype/spec/otff#organization-of-an-opentype-font
 */
export function isSfntFont(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 12) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!SFNT_VERSIONS.has(view.getUint32(0))) return false;
  const count = view.getUint16(4);
  if (count === 0 || 12 + 16 * count > bytes.byteLength) return false;
  for (let i = 0; i < count; i++) {
    const record = 12 + 16 * i;
    if (view.getUint32(record + 8) + view.getUint32(record + 12) > bytes.byteLength) return false;
  }
  const has = (tag: string): boolean => table(view, tag) !== undefined;
  // `head` is 54 bytes (its indexToLocFormat, at 50, is read by hasEvenGlyphRecords).
  return has('cmap') && (table(view, 'head')?.length ?? 0) >= 54 && ((has('glyf') && has('loca')) || has('CFF ') || has('CFF2'));
}

/**
 * True when every `glyf` record starts at an even offset (so pdf-lib's subset is well formed); true
 * too for fonts without `glyf` (CFF outlines) and with a short `loca` (even offsets by construction).
 */
export function hasEvenGlyphRecords(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = table(view, 'head');
  const loca = table(view, 'loca');
  if (!head || !loca || view.getInt16(head.offset + 50) !== 1) return true;
  for (let at = loca.offset; at + 4 <= loca.offset + loca.length; at += 4) {
    if (view.getUint32(at) % 2 !== 0) return false;
  }
  return true;
}

const cache = new Map<string, LoadedFont>();

function loadFont(file: string, variable: string): LoadedFont {
  const cached = cache.get(file);
  if (cached) return cached;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(fs.readFileSync(file));
  } catch (err) {
    throw new ReportFontError(`Report font ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); set ${variable} to a TrueType font file.`);
  }
  const notAFont = (): ReportFontError => new ReportFontError(`Report font ${file} is not a TrueType/OpenType font; set ${variable} to a .ttf file.`);
  if (!isSfntFont(bytes)) throw notAFont();
  const subsettable = hasEvenGlyphRecords(bytes);
  if (!subsettable) logger.warn('PDF font has odd-length glyph records; embedding it whole (larger PDFs)', { fontFile: file, fontVariable: variable });
  // Parsed by fontkit when first asked about a character, not at start-up: loading fontkit and
  // parsing the four fonts cost every process start ~0.2 s of CPU, most of which never prints.
  let font: Font | undefined;
  const coverage = new Map<number, boolean>();
  const loaded: LoadedFont = {
    path: file,
    bytes,
    subsettable,
    has(codePoint) {
      let known = coverage.get(codePoint);
      if (known === undefined) {
        if (!font) {
          try {
            font = fontkit().create(bytes);
          } catch {
            throw notAFont();
          }
        }
        known = font.hasGlyphForCodePoint(codePoint);
        coverage.set(codePoint, known);
      }
      return known;
    },
  };
  cache.set(file, loaded);
  return loaded;
}

/**
 * Reads the report fonts (cached per process; used by the report and the receipt): the configured paths, else `assets/fonts/`.
 * @throws ReportFontError naming the variable to set when a font is missing or unreadable
 */
export function loadReportFonts(paths: ReportFontPaths = {}): ReportFonts {
  const dir = defaultFontDir();
  const resolve = (kind: keyof typeof DEFAULT_FILES): LoadedFont => {
    const configured = paths[kind];
    if (!configured && !dir) {
      throw new ReportFontError(`No assets/fonts folder found for the report font; set ${VARIABLES[kind]} to a TrueType font file.`);
    }
    return loadFont(configured ?? path.join(dir as string, DEFAULT_FILES[kind]), VARIABLES[kind]);
  };
  const hangul = dir ? loadFont(path.join(dir, HANGUL_FILE), 'REPORT_FALLBACK_FONT_PATH') : undefined;
  const fonts: ReportFonts = { regular: resolve('regular'), bold: resolve('bold'), fallback: resolve('fallback'), ...(hangul ? { hangul } : {}) };
  inUse = fonts;
  return fonts;
}

/**
 * The fonts last loaded by this thread: in the API process, those the service loads at boot from
 * its configuration (`REPORT_FONT_PATH` & co.), the ones the PDF thread is sent; else the defaults.
 */
let inUse: ReportFonts | undefined;

/**
 * The first character of `text` that the report would print as "�" (no report font has it), after
 * NFC normalisation as the report applies it; `undefined` when every character prints. `face` is
 * the face the text is drawn with (the signer's name is bold). The same check as the layout's
 * ({@link unprintableIn}), on the fonts the PDFs are rendered with.
 */
export function unprintableCharacter(text: string, face: 'regular' | 'bold' = 'regular', fonts: ReportFonts = inUse ?? loadReportFonts()): string | undefined {
  return unprintableIn(text, face === 'bold' ? fonts.bold : fonts.regular, fallbackChain(fonts));
}
