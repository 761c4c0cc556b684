/**
 * Line breaking of the report's text: where a line may break, and characters that are not drawn as
 * themselves (no-break spaces, soft hyphens).
 */
import { PDFDocument } from 'pdf-lib';
import { embedFontFaces } from '../../src/report/embed-fonts';
import { loadReportFonts } from '../../src/report/report-fonts';
import { wrapText, type FontFace } from '../../src/report/text-layout';

let face: FontFace;
beforeAll(async () => {
  face = (await embedFontFaces(await PDFDocument.create(), loadReportFonts({}), 'latin text')).regular;
});

/** The width of `text` at 10 pt: a line that holds exactly that much. */
const widthOf = (text: string): number => face.width(text, 10);

it('never breaks a line at a no-break space: "5\u00A0mg" stays together, drawn with a plain space', () => {
  const text = 'Give 5\u00A0mg daily';
  // Room for "Give 5" but not "Give 5 mg": the break falls before the number, not inside "5 mg".
  const lines = wrapText(text, face, 10, widthOf('Give 5 m'));
  expect(lines[0]).toBe('Give');
  expect(lines[1]?.startsWith('5\u00A0mg')).toBe(true);
  expect(face.runs('5\u00A0mg').map((r) => r.text).join('')).toBe('5 mg');
});

it('draws no soft hyphen (U+00AD) and gives it no width', () => {
  expect(face.runs('hemo\u00ADglobin').map((r) => r.text).join('')).toBe('hemoglobin');
  expect(widthOf('hemo\u00ADglobin')).toBe(widthOf('hemoglobin'));
});

it('still breaks at ordinary spaces, tabs and line breaks', () => {
  expect(wrapText('one two\tthree', face, 10, widthOf('one two'))).toEqual(['one two', 'three']);
  expect(wrapText('one\ntwo', face, 10, 1000)).toEqual(['one', 'two']);
});
