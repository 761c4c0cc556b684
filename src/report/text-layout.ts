/**
 * Text for the opinion PDF (NFC-normalised): splitting a string into runs by font (the Latin font
 * first, then the fallbacks, CJK and Hangul, for what it lacks) and wrapping paragraphs to a width. CJK text has no spaces, so each
 * ideograph or kana is a break opportunity; a word longer than the line is cut by characters.
 * @packageDocumentation
 */
import type { PDFFont } from 'pdf-lib';
import type { LoadedFont } from './report-fonts';

/** A piece of a line drawn with one font. */
export interface TextRun {
  readonly font: PDFFont;
  readonly text: string;
}

/** Characters that break anywhere: CJK ideographs, kana, Hangul, CJK punctuation, full-width forms. */
const CJK_RANGES = '\\u2E80-\\u303F\\u3040-\\u30FF\\u3100-\\u31FF\\u3400-\\u4DBF\\u4E00-\\u9FFF\\uAC00-\\uD7AF\\uF900-\\uFAFF\\uFF00-\\uFFEF';
const CJK = new RegExp(`[${CJK_RANGES}]`, 'u');
/**
 * White space a line may break at: JavaScript's `\s` but the no-break spaces (U+00A0, U+2007,
 * U+202F), which keep "5 mg" or "Dr. Ng" on one line (https://www.unicode.org/reports/tr14/#GL).
 */
const BREAKING_SPACE = '\\t\\n\\v\\f\\r \\u1680\\u2000-\\u2006\\u2008-\\u200A\\u2028\\u2029\\u205F\\u3000\\uFEFF';
const TOKENS = new RegExp(`[${BREAKING_SPACE}]+|[${CJK_RANGES}]|[^${BREAKING_SPACE}${CJK_RANGES}]+`, 'gu');
const ONLY_BREAKING_SPACE = new RegExp(`^[${BREAKING_SPACE}]+$`, 'u');
/** No-break spaces: drawn (and measured) as a space, never broken at. */
const NO_BREAK_SPACES: ReadonlySet<number> = new Set([0xa0, 0x2007, 0x202f]);
/** U+00AD SOFT HYPHEN: invisible where the line does not break there (and this layout never hyphenates). */
const SOFT_HYPHEN = 0xad;

/**
 * Characters that select how the previous one looks and are never a glyph of their own: variation
 * selectors (U+FE0F after ✔ or ⚠ asks for emoji presentation; macOS and iOS keyboards add it), the
 * zero-width joiner and non-joiner, and the word joiner. Drawn as nothing: the character before them
 * prints in its text form. Refusing them would name a character the specialist cannot see.
 */
function invisibleSelector(cp: number): boolean {
  return (cp >= 0xfe00 && cp <= 0xfe0f) || cp === 0x200c || cp === 0x200d || cp === 0x2060;
}

/**
 * What a character is drawn as: a space for a control character (tab, line break, C1) and for the
 * no-break spaces; nothing (`undefined`) for a soft hyphen or an invisible selector ({@link invisibleSelector}); else itself.
 */
function drawnAs(ch: string): string | undefined {
  const cp = ch.codePointAt(0) as number;
  if (cp === SOFT_HYPHEN || invisibleSelector(cp)) return undefined;
  return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || NO_BREAK_SPACES.has(cp) ? ' ' : ch;
}

/**
 * The first character of `text` (NFC-normalised, as drawn) that neither `primary` nor any of
 * `fallbacks` has: the one the report would print as U+FFFD. The check the PDFs' layout uses
 * ({@link FontFace.runs}), so what is accepted before rendering is what prints.
 */
export function unprintableIn(text: string, primary: LoadedFont, fallbacks: readonly LoadedFont[]): string | undefined {
  for (const raw of text.normalize('NFC')) {
    const ch = drawnAs(raw);
    if (ch === undefined) continue;
    const cp = ch.codePointAt(0) as number;
    if (!primary.has(cp) && !fallbacks.some((f) => f.has(cp))) return ch;
  }
  return undefined;
}

/** The code points of `text` (NFC-normalised, as drawn) that some of `fonts` lacks: those a fallback must draw. */
export function missingFrom(text: string, fonts: readonly LoadedFont[]): Set<number> {
  const missing = new Set<number>();
  for (const raw of text.normalize('NFC')) {
    const ch = drawnAs(raw);
    if (ch === undefined) continue;
    const cp = ch.codePointAt(0) as number;
    if (fonts.some((f) => !f.has(cp))) missing.add(cp);
  }
  return missing;
}

/** An embedded fallback font and its coverage. */
export interface EmbeddedFallback {
  readonly font: PDFFont;
  readonly coverage: LoadedFont;
}

/** A face: an embedded primary font with embedded fallbacks (tried in order), chosen per character. */
export class FontFace {
  private readonly advances = new Map<PDFFont, Map<string, number>>();

  constructor(
    private readonly primary: PDFFont,
    private readonly primaryCoverage: LoadedFont,
    private readonly fallbacks: readonly EmbeddedFallback[] = [],
  ) {}

  /**
   * Consecutive characters grouped by the font that has them; a character none has becomes U+FFFD.
   * The text is NFC-normalised first (a decomposed "한" or "é" is drawn as the precomposed glyph).
   */
  runs(text: string): TextRun[] {
    const runs: { font: PDFFont; text: string }[] = [];
    for (const raw of text.normalize('NFC')) {
      let ch = drawnAs(raw);
      if (ch === undefined) continue;
      const cp = ch.codePointAt(0) as number;
      let font = this.primary;
      if (!this.primaryCoverage.has(cp)) {
        const fallback = this.fallbacks.find((f) => f.coverage.has(cp));
        if (fallback) font = fallback.font;
        else ch = '\uFFFD';
      }
      const last = runs[runs.length - 1];
      if (last && last.font === font) last.text += ch;
      else runs.push({ font, text: ch });
    }
    return runs;
  }

  /**
   * Width of `text` at `size`: the sum of per-character advances, each measured once per font
   * (fontkit's full shaping for every measurement made wrapping quadratic and slow; kerning is
   * ignored when measuring, so a line may end a hair short of the margin).
   */
  width(text: string, size: number): number {
    let units = 0;
    for (const run of this.runs(text)) {
      let widths = this.advances.get(run.font);
      if (!widths) {
        widths = new Map();
        this.advances.set(run.font, widths);
      }
      for (const ch of run.text) {
        let w = widths.get(ch);
        if (w === undefined) {
          w = run.font.widthOfTextAtSize(ch, 1000);
          widths.set(ch, w);
        }
        units += w;
      }
    }
    return (units * size) / 1000;
  }
}

/** Wraps one paragraph (no line breaks inside) to lines of at most `maxWidth` points. */
export function wrapParagraph(text: string, face: FontFace, size: number, maxWidth: number): string[] {
  const tokens = text.match(TOKENS) ?? [];
  const lines: string[] = [];
  let line = '';
  // The line's width, kept as it grows (a width is the sum of its characters' advances): measuring
  // the whole line again for every character made a 20,000-character URL take a quarter second.
  let lineWidth = 0;
  const space = face.width(' ', size);
  const push = (): void => {
    if (line.trim() !== '') lines.push(line.trimEnd());
    line = '';
    lineWidth = 0;
  };
  for (const token of tokens) {
    if (ONLY_BREAKING_SPACE.test(token)) {
      if (line !== '') {
        line += ' ';
        lineWidth += space;
      }
      continue;
    }
    const tokenWidth = face.width(token, size);
    if (lineWidth + tokenWidth <= maxWidth) {
      line += token;
      lineWidth += tokenWidth;
      continue;
    }
    if (line.trim() !== '' && !CJK.test(token) && tokenWidth <= maxWidth) {
      push();
      line = token;
      lineWidth = tokenWidth;
      continue;
    }
    // A CJK character, or a word longer than a line: fill the line character by character.
    for (const ch of token) {
      const charWidth = face.width(ch, size);
      if (lineWidth + charWidth > maxWidth && line.trim() !== '') push();
      line += ch;
      lineWidth += charWidth;
    }
  }
  push();
  return lines.length > 0 ? lines : [''];
}

/** Wraps text with line breaks: each paragraph wrapped, blank lines kept (collapsed to one). */
export function wrapText(text: string, face: FontFace, size: number, maxWidth: number): string[] {
  const out: string[] = [];
  // NFC first: a line break never falls between a letter and its combining mark or inside a decomposed syllable.
  for (const paragraph of text.normalize('NFC').replace(/\r\n?/g, '\n').split(/\n/)) {
    if (paragraph.trim() === '') {
      if (out.length > 0 && out[out.length - 1] !== '') out.push('');
      continue;
    }
    out.push(...wrapParagraph(paragraph, face, size, maxWidth));
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

/** `text` whole when it fits in `maxWidth` points, else cut (by characters) and ended with "…" to fit. */
export function fitText(raw: string, face: FontFace, size: number, maxWidth: number): string {
  const text = raw.normalize('NFC');
  if (face.width(text, size) <= maxWidth) return text;
  const room = maxWidth - face.width('…', size);
  let kept = '';
  for (const ch of text) {
    if (face.width(kept + ch, size) > room) break;
    kept += ch;
  }
  return `${kept.trimEnd()}…`;
}
