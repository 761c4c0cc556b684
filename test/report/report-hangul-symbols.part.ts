/**
 * Korean and common clinical notation print as themselves, never as "�": the Hangul syllables
 * (Droid Sans Fallback has 3 of them; the committed "SOB Hangul" subset of NanumGothic has all),
 * super- and subscripts, number forms and check marks (DejaVu), and decomposed (NFD) text.
 */
import * as fontkit from '@pdf-lib/fontkit';
import { PDFDocument } from 'pdf-lib';
import { embedFontFaces } from '../../src/report/embed-fonts';
import { renderReportPdf } from '../../src/report/report-pdf';
import { loadReportFonts, unprintableCharacter } from '../../src/report/report-fonts';
import type { FontFace } from '../../src/report/text-layout';
import { badGlyphs, pdfDrawnGlyphs, sourceFonts } from '../support/pdf-glyphs';
import { SAMPLE_REPORT } from '../support/report-input';

const KOREAN = '김민준 王小明 渡辺';
const NOTATION = '45 × 10⁹/L, SpO₂ 97 %, give ⅓ of the dose ✓ ☑';
const DECOMPOSED = '\u1112\u1161\u11AB\u1100\u1173\u11AF e\u0301'; // 한글 é in NFD

let face: FontFace;
let bold: FontFace;
beforeAll(async () => {
  const faces = await embedFontFaces(await PDFDocument.create(), loadReportFonts({}), `${KOREAN}${NOTATION}${DECOMPOSED}`);
  face = faces.regular;
  bold = faces.bold;
});

const printed = (f: FontFace, text: string): string => f.runs(text).map((r) => r.text).join('');

it.each([KOREAN, NOTATION, '똠방각하 뷁 햏', 'ㄱㄴㄷ ㈜'])('lays out %s with no U+FFFD, in both faces', (text) => {
  for (const f of [face, bold]) {
    expect(printed(f, text)).not.toContain('\uFFFD');
    expect(printed(f, text)).toBe(text);
  }
});

it('draws decomposed (NFD) Hangul and accents as the precomposed characters', () => {
  expect(printed(face, DECOMPOSED)).toBe('한글 é');
});

it('has every one of the 2,350 Hangul syllables of KS X 1001, and all 11,172', () => {
  const decoder = new TextDecoder('euc-kr', { fatal: true });
  const ks: string[] = [];
  for (let lead = 0xb0; lead <= 0xc8; lead++) {
    for (let trail = 0xa1; trail <= 0xfe; trail++) ks.push(decoder.decode(Uint8Array.of(lead, trail)));
  }
  expect(ks.length).toBe(2350);
  expect(ks.filter((c) => unprintableCharacter(c) !== undefined)).toEqual([]);
  const all = Array.from({ length: 11_172 }, (_, i) => String.fromCodePoint(0xac00 + i)).join('');
  expect(unprintableCharacter(all)).toBeUndefined();
  expect(unprintableCharacter(all, 'bold')).toBeUndefined();
});

it('names what no font has (README: other scripts and emoji)', () => {
  expect(unprintableCharacter('Shalom שלום')).toBe('ש');
  expect(unprintableCharacter('ok 👍')).toBe('👍');
  expect(unprintableCharacter(`${KOREAN} ${NOTATION} ${DECOMPOSED}`)).toBeUndefined();
});

describe('the report for a Korean patient, with clinical notation', () => {
  let pdf: Uint8Array;
  beforeAll(async () => {
    pdf = await renderReportPdf({
      ...SAMPLE_REPORT,
      patient: { name: '김민준', birthDate: '2016-05-02', sex: 'male' },
      summary: `${NOTATION}. 보호자 질문에 답합니다.`,
      answers: [{ question: '수술이 필요한가요?', answer: '아니요, 약물 치료를 계속합니다. 한글' }],
      specialist: { name: '이서연 (Dr. Seo-yeon Lee)', npi: SAMPLE_REPORT.specialist.npi },
    });
  });

  it('draws every character with its glyph (none blank, none "�")', async () => {
    const drawn = await pdfDrawnGlyphs(pdf);
    const text = drawn.map((d) => d.char).join('');
    for (const needle of ['김민준', '10⁹/L', 'SpO₂', '⅓', '✓', '보호자', '수술이 필요한가요?', '이서연']) expect(text).toContain(needle);
    expect(text).not.toContain('\uFFFD');
    const hangul = loadReportFonts().hangul;
    const sources = [...sourceFonts(), ...(hangul ? [fontkit.create(Buffer.from(hangul.bytes))] : [])];
    expect(badGlyphs(drawn, sources)).toEqual([]);
  });

  it('stays small (fonts subset to the glyphs used)', () => {
    expect(pdf.length).toBeLessThan(100_000);
  });
});
