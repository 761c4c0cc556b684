/**
 * What viewers paint, not only what text extraction finds: every glyph the report draws must have
 * an outline in the font program embedded in the PDF, the same outline as the source font's glyph
 * for that character. (pdf-lib's subsetting of fonts with odd-length glyph records once drew most
 * glyphs blank while the text still extracted; see src/report/report-fonts.ts.)
 */
import { renderReportPdf, type ReportInput } from '../../src/report/report-pdf';
import { hasEvenGlyphRecords, loadReportFonts } from '../../src/report/report-fonts';
import { badGlyphs, pdfDrawnGlyphs, sourceFonts } from '../support/pdf-glyphs';
import { SAMPLE_REPORT } from '../support/report-input';

const input = (patient: string): ReportInput => ({
  ...SAMPLE_REPORT,
  version: 2,
  status: 'amended',
  patient: { name: patient, birthDate: '2016-05-02', sex: 'male' },
  referringPhysician: 'Dr. Łukasz Żółć',
  diagnosis: 'Refractory focal epilepsy — Ærøskøbing',
  summary: 'The diagnosis is supported by the records (EEG, MRI 3T). Νίκη Ивановa.',
  diagnosisAssessment: 'Assessment: 5–10 mg/kg; “quoted”; 100 % ≥ 50 µg.',
  recommendations: '继续目前的药物治疗。',
});

const sources = sourceFonts();

describe.each(['Adán Núñez', 'Łukasz Żółć', '王小明', 'Adán 王小明', '渡辺 さくら', '斎藤 恵'])('the report for %s', (name) => {
  let pdf: Uint8Array;
  beforeAll(async () => {
    pdf = await renderReportPdf(input(name));
  });

  it('draws every character with a non-empty glyph, the one the source font has for it', async () => {
    const drawn = await pdfDrawnGlyphs(pdf);
    const text = drawn.map((d) => d.char).join('');
    for (const needle of [name, 'Łukasz Żółć', 'Zoë Ångström', '继续目前的药物治疗', 'Νίκη Ивановa']) expect(text).toContain(needle);
    expect(badGlyphs(drawn, sources)).toEqual([]);
  });

  it('stays small (fonts subset to the glyphs used)', () => {
    expect(pdf.length).toBeLessThan(100_000);
  });
});

/** The characters a double-byte legacy encoding maps its byte pairs `leads` × `trails` to (Node's full ICU decodes them). */
function charactersOf(encoding: string, leads: readonly number[], trails: readonly number[]): string[] {
  const decoder = new TextDecoder(encoding, { fatal: true });
  const chars: string[] = [];
  for (const lead of leads) {
    for (const trail of trails) {
      try {
        chars.push(decoder.decode(Uint8Array.of(lead, trail)));
      } catch {
        // not a character of the set
      }
    }
  }
  return chars;
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('the committed fonts', () => {
  it('draw every Kanji of JIS X 0208 (levels 1 and 2: the names of Japanese children, 渡辺, 斎藤), not only the Chinese and Korean sets', () => {
    const fallback = sources[2];
    const kanji = charactersOf('euc-jp', range(0xb0, 0xf4), range(0xa1, 0xfe));
    expect(kanji.length).toBe(6355);
    expect(kanji.filter((c) => !fallback?.hasGlyphForCodePoint(c.codePointAt(0) ?? 0))).toEqual([]);
  });

  it('have even-length glyph records, so pdf-lib subsets them (scripts/subset-report-fonts.py pads them)', () => {
    const fonts = loadReportFonts();
    for (const font of [fonts.regular, fonts.bold, fonts.fallback, ...(fonts.hangul ? [fonts.hangul] : [])]) {
      expect({ path: font.path, even: hasEvenGlyphRecords(font.bytes), subsettable: font.subsettable }).toEqual({ path: font.path, even: true, subsettable: true });
    }
  });
});

/** A minimal sfnt with a `head` (long loca) and a `loca` whose glyph offsets are `offsets`. */
function sfnt(offsets: readonly number[]): Uint8Array {
  const headAt = 12 + 2 * 16;
  const locaAt = headAt + 54;
  const bytes = new Uint8Array(locaAt + 4 * offsets.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0x00010000);
  view.setUint16(4, 2);
  const record = (i: number, tag: string, offset: number, length: number): void => {
    for (let c = 0; c < 4; c++) view.setUint8(12 + 16 * i + c, tag.charCodeAt(c));
    view.setUint32(12 + 16 * i + 8, offset);
    view.setUint32(12 + 16 * i + 12, length);
  };
  record(0, 'head', headAt, 54);
  record(1, 'loca', locaAt, 4 * offsets.length);
  view.setInt16(headAt + 50, 1);
  offsets.forEach((o, i) => view.setUint32(locaAt + 4 * i, o));
  return bytes;
}

it('flags a font with odd-length glyph records (embedded whole instead of subset)', () => {
  expect(hasEvenGlyphRecords(sfnt([0, 12, 40, 40, 96]))).toBe(true);
  expect(hasEvenGlyphRecords(sfnt([0, 13, 40, 41, 96]))).toBe(false);
});
