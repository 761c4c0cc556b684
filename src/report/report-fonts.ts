/**
 * The fonts of the opinion PDF. PDF's standard 14 fonts only know WinAnsi (about Latin-1), so a
 * name like "Adán" works but "王小明" or "Łukasz Żółć" would not: the report embeds TrueType fonts
 * (subset to the glyphs used, through fontkit) — DejaVu Sans for Latin, Greek and Cyrillic, and
 * Droid Sans Fallback for Chinese, Japanese and Korean, used glyph by glyph where the first lacks one.
 *
 * The subsets committed under `assets/fonts/` (see its LICENSES.md) are the default; operators may
 * point `REPORT_FONT_PATH`, `REPORT_BOLD_FONT_PATH` and `REPORT_FALLBACK_FONT_PATH` at other TTF files.
 * @see https://pdf-lib.js.org/docs/api/classes/pdfdocument#embedfont
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import * as fontkit from '@pdf-lib/fontkit';

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
  /** Whether the font has a glyph for this code point. */
  has(codePoint: number): boolean;
}

/** The three report fonts, read and ready to embed. */
export interface ReportFonts {
  readonly regular: LoadedFont;
  readonly bold: LoadedFont;
  readonly fallback: LoadedFont;
}

/** Thrown when a report font cannot be found or read; names the variable to set. */
export class ReportFontError extends Error {
  override readonly name = 'ReportFontError';
}

const DEFAULT_FILES = { regular: 'DejaVuSans-subset.ttf', bold: 'DejaVuSans-Bold-subset.ttf', fallback: 'DroidSansFallback-subset.ttf' } as const;
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
  let font: fontkit.Font;
  try {
    font = fontkit.create(bytes);
  } catch {
    throw new ReportFontError(`Report font ${file} is not a TrueType/OpenType font; set ${variable} to a .ttf file.`);
  }
  const coverage = new Map<number, boolean>();
  const loaded: LoadedFont = {
    path: file,
    bytes,
    has(codePoint) {
      let known = coverage.get(codePoint);
      if (known === undefined) {
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
 * Reads the report fonts (cached per process): the configured paths, else `assets/fonts/`.
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
  return { regular: resolve('regular'), bold: resolve('bold'), fallback: resolve('fallback') };
}
