/**
 * Text of a PDF written by pdf-lib, for tests: each page's content stream is decoded, the font of
 * every `Tj` found from the preceding `Tf`, and the glyph codes mapped back to Unicode through that
 * font's ToUnicode CMap (https://opensource.adobe.com/dc-acrobat-sdk-docs/pdfstandards/PDF32000_2008.pdf
 * §9.10.3). Lines are split where the baseline (the `Tm`/`Td` y) changes. Enough for the report
 * PDFs (embedded TrueType subsets, Identity-H, hex strings); not a general PDF text extractor.
 */
import { decodePDFRawStream, PDFArray, PDFDict, PDFDocument, PDFName, PDFRawStream, PDFRef, type PDFPage } from 'pdf-lib';

type CMap = Map<string, string>;

function hexToUnicode(hex: string): string {
  let out = '';
  for (let i = 0; i + 4 <= hex.length; i += 4) out += String.fromCharCode(parseInt(hex.slice(i, i + 4), 16));
  return out;
}

/** Code (upper-case hex) to Unicode text, from a ToUnicode CMap's bfchar and bfrange blocks. */
export function parseCMap(text: string): CMap {
  const map: CMap = new Map();
  for (const block of text.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) {
    for (const m of (block[1] ?? '').matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>/g)) map.set((m[1] ?? '').toUpperCase(), hexToUnicode(m[2] ?? ''));
  }
  for (const block of text.matchAll(/beginbfrange([\s\S]*?)endbfrange/g)) {
    for (const m of (block[1] ?? '').matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])/g)) {
      const lo = parseInt(m[1] ?? '0', 16);
      const hi = parseInt(m[2] ?? '0', 16);
      const width = (m[1] ?? '').length;
      const dst = m[3] ?? '';
      if (dst.startsWith('[')) {
        const items = [...dst.matchAll(/<([0-9A-Fa-f]+)>/g)].map((x) => x[1] ?? '');
        for (let c = lo; c <= hi; c++) map.set(c.toString(16).toUpperCase().padStart(width, '0'), hexToUnicode(items[c - lo] ?? ''));
      } else {
        const base = dst.slice(1, -1);
        const start = parseInt(base.slice(-4), 16);
        for (let c = lo; c <= hi; c++) map.set(c.toString(16).toUpperCase().padStart(width, '0'), hexToUnicode(base.slice(0, -4)) + String.fromCharCode(start + c - lo));
      }
    }
  }
  return map;
}

/** A (possibly indirect) stream object, decoded, as latin1 text; empty for anything else. */
export function streamText(doc: PDFDocument, ref: unknown): string {
  const obj = ref instanceof PDFRef ? doc.context.lookup(ref) : ref;
  if (obj instanceof PDFRawStream) return Buffer.from(decodePDFRawStream(obj).decode()).toString('latin1');
  return '';
}

function fontMaps(doc: PDFDocument, page: PDFPage): Map<string, CMap> {
  const maps = new Map<string, CMap>();
  const fonts = page.node.Resources()?.lookup(PDFName.of('Font'), PDFDict);
  for (const [name, ref] of fonts?.entries() ?? []) {
    const font = doc.context.lookup(ref, PDFDict);
    const toUnicode = font.get(PDFName.of('ToUnicode'));
    maps.set(name.asString(), toUnicode ? parseCMap(streamText(doc, toUnicode)) : new Map());
  }
  return maps;
}

/** A page's content stream(s), decoded and joined. */
export function contentOf(doc: PDFDocument, page: PDFPage): string {
  const contents = page.node.get(PDFName.of('Contents'));
  const resolved = contents instanceof PDFRef ? doc.context.lookup(contents) : contents;
  if (resolved instanceof PDFArray) return resolved.asArray().map((r) => streamText(doc, r)).join('\n');
  return streamText(doc, resolved);
}

/** The text of every page, lines joined with `\n`. */
export async function pdfPageTexts(bytes: Uint8Array): Promise<string[]> {
  const doc = await PDFDocument.load(bytes);
  return doc.getPages().map((page) => {
    const maps = fontMaps(doc, page);
    const content = contentOf(doc, page);
    let font: CMap = new Map();
    let y: number | undefined;
    let text = '';
    const ops = /\/([^\s/]+)\s+[\d.]+\s+Tf|([-\d.]+)\s+([-\d.]+)\s+Td|[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+([-\d.]+)\s+Tm|<([0-9A-Fa-f]*)>\s*Tj/g;
    for (const m of content.matchAll(ops)) {
      if (m[1]) font = maps.get(`/${m[1]}`) ?? new Map();
      else if (m[3] !== undefined || m[4] !== undefined) {
        const ny = Number(m[3] ?? m[4]);
        if (y !== undefined && Math.abs(ny - y) > 0.5) text += '\n';
        y = ny;
      } else if (m[5] !== undefined) {
        const hex = m[5].toUpperCase();
        for (let i = 0; i + 4 <= hex.length; i += 4) text += font.get(hex.slice(i, i + 4)) ?? '\uFFFD';
      }
    }
    return text;
  });
}

/** All pages' text. */
export async function pdfText(bytes: Uint8Array): Promise<string> {
  return (await pdfPageTexts(bytes)).join('\n');
}
