/**
 * The glyphs a pdf-lib PDF draws, for tests that check what a viewer would paint and not only the
 * text it would extract: every page font's embedded program (`FontFile2`, Flate-decoded) is opened
 * with fontkit, and every glyph code of every `Tj` (Identity-H, `CIDToGIDMap /Identity`, so the
 * code is the glyph id of the embedded font) is looked up in it, with its character from the
 * ToUnicode CMap. A glyph whose outline is empty (or differs from the source font's glyph for that
 * character) is drawn blank (or wrong) by viewers, whatever text extraction says.
 * @see https://opensource.adobe.com/dc-acrobat-sdk-docs/pdfstandards/PDF32000_2008.pdf §9.7.4, §9.9
 */
import * as fontkit from '@pdf-lib/fontkit';
import { decodePDFRawStream, PDFArray, PDFDict, PDFDocument, PDFName, PDFRawStream, type PDFRef } from 'pdf-lib';
import { loadReportFonts, type ReportFontPaths } from '../../src/report/report-fonts';
import { contentOf, parseCMap, streamText } from './pdf-text';

/** One glyph drawn on a page. */
export interface DrawnGlyph {
  /** PostScript name of the embedded font (pdf-lib appends a number: `DejaVuSans-1186`). */
  readonly font: string;
  /** The character, from the font's ToUnicode CMap (`\uFFFD` when unmapped). */
  readonly char: string;
  /** Glyph id in the embedded font program. */
  readonly glyphId: number;
  /** The glyph as fontkit reads it from the embedded program. */
  readonly glyph: fontkit.Glyph;
}

interface PageFont {
  readonly name: string;
  readonly program: fontkit.Font;
  readonly toUnicode: Map<string, string>;
}

function fontProgram(doc: PDFDocument, type0: PDFDict): { name: string; program: fontkit.Font } {
  const descendant = type0.lookup(PDFName.of('DescendantFonts'), PDFArray).lookup(0, PDFDict);
  const name = descendant.lookup(PDFName.of('BaseFont'), PDFName).decodeText();
  const descriptor = descendant.lookup(PDFName.of('FontDescriptor'), PDFDict);
  const file = doc.context.lookup(descriptor.get(PDFName.of('FontFile2')) as PDFRef);
  if (!(file instanceof PDFRawStream)) throw new Error(`${name}: no embedded TrueType program (FontFile2)`);
  const program = fontkit.create(Buffer.from(decodePDFRawStream(file).decode()));
  return { name, program };
}

/** Every glyph drawn on every page of the PDF, in content-stream order. */
export async function pdfDrawnGlyphs(bytes: Uint8Array): Promise<DrawnGlyph[]> {
  const doc = await PDFDocument.load(bytes);
  const programs = new Map<string, { name: string; program: fontkit.Font }>();
  const drawn: DrawnGlyph[] = [];
  for (const page of doc.getPages()) {
    const fonts = new Map<string, PageFont>();
    for (const [resource, ref] of page.node.Resources()?.lookup(PDFName.of('Font'), PDFDict)?.entries() ?? []) {
      const type0 = doc.context.lookup(ref, PDFDict);
      const key = ref.toString();
      const loaded = programs.get(key) ?? fontProgram(doc, type0);
      programs.set(key, loaded);
      const toUnicode = type0.get(PDFName.of('ToUnicode'));
      fonts.set(resource.asString(), { ...loaded, toUnicode: toUnicode ? parseCMap(streamText(doc, toUnicode)) : new Map() });
    }
    let font: PageFont | undefined;
    for (const m of contentOf(doc, page).matchAll(/\/([^\s/]+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>\s*Tj/g)) {
      if (m[1] !== undefined) font = fonts.get(`/${m[1]}`);
      else if (m[2] !== undefined) {
        if (!font) throw new Error('Tj before Tf');
        const hex = m[2].toUpperCase();
        for (let i = 0; i + 4 <= hex.length; i += 4) {
          const code = hex.slice(i, i + 4);
          const glyphId = parseInt(code, 16);
          drawn.push({ font: font.name, char: font.toUnicode.get(code) ?? '\uFFFD', glyphId, glyph: font.program.getGlyph(glyphId) });
        }
      }
    }
  }
  return drawn;
}

/**
 * The drawn glyphs a viewer would paint blank or wrong, as readable strings (empty when all is
 * well): a non-space character whose glyph has no outline or cannot be read, or (when `sources` has the font the
 * embedded one was made from, by PostScript name) whose outline differs from the source's glyph.
 */
export function badGlyphs(drawn: readonly DrawnGlyph[], sources: readonly fontkit.Font[] = []): string[] {
  const bad = new Set<string>();
  for (const d of drawn) {
    if (/^\s$/u.test(d.char)) continue;
    const where = `${d.font}: '${d.char}' (U+${(d.char.codePointAt(0) ?? 0).toString(16).toUpperCase()}, glyph ${d.glyphId})`;
    let outline: string;
    try {
      outline = d.glyph.path.toSVG(); // '' exactly when the path has no commands
    } catch (err) {
      bad.add(`${where} cannot be read (${(err as Error).message})`);
      continue;
    }
    if (outline === '') {
      bad.add(`${where} has no outline`);
      continue;
    }
    const source = sources.find((s) => d.font.replace(/-\d+$/u, '') === s.postscriptName);
    const expected = source?.glyphForCodePoint(d.char.codePointAt(0) ?? 0);
    if (expected && expected.path.toSVG() !== outline) bad.add(`${where} differs from ${source?.postscriptName ?? ''}'s glyph`);
  }
  return [...bad];
}

/** The fonts the PDFs embed (`assets/fonts/` unless `paths` says otherwise), opened with fontkit, for {@link badGlyphs}. */
export function sourceFonts(paths: ReportFontPaths = {}): fontkit.Font[] {
  const fonts = loadReportFonts(paths);
  return [fonts.regular, fonts.bold, fonts.fallback].map((f) => fontkit.create(Buffer.from(f.bytes)));
}
