import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decoderFor, isKnownCharacterSet } from '../../src/imaging/dicom-charset';
import { parseDicomFileSync } from '../../src/imaging/dicom-file';
import { parseDicomHeader } from '../../src/imaging/dicom-header';
import { syntheticDicom } from './support';

function header(bytes: Buffer) {
  const result = parseDicomHeader(bytes);
  if (!result.ok) throw new Error(result.reason);
  return result.header;
}

describe('text decoding by Specific Character Set', () => {
  it('ISO_IR 100 (latin1)', () => {
    const h = header(syntheticDicom({ charset: 'ISO_IR 100', patientName: Buffer.from('Müller^José', 'latin1'), studyDescription: Buffer.from('Tête', 'latin1') }));
    expect(h.patientName).toBe('Müller^José');
    expect(h.studyDescription).toBe('Tête');
    expect(h.specificCharacterSet).toBe('ISO_IR 100');
    expect(h.warnings).toEqual([]);
  });

  it('ISO_IR 192 (UTF-8)', () => {
    const h = header(syntheticDicom({ charset: 'ISO_IR 192', patientName: Buffer.from('Portillo^Adán', 'utf8'), studyDescription: Buffer.from('Головной мозг', 'utf8') }));
    expect(h.patientName).toBe('Portillo^Adán');
    expect(h.studyDescription).toBe('Головной мозг');
  });

  it('default repertoire when absent; unknown sets fall back to latin1 with a warning', () => {
    expect(header(syntheticDicom({ patientName: 'Doe^Jane' })).patientName).toBe('Doe^Jane');
    const h = header(syntheticDicom({ charset: 'ISO_IR 999', patientName: Buffer.from('Zoë^A', 'latin1') }));
    expect(h.patientName).toBe('Zoë^A');
    expect(h.warnings[0]).toMatch(/unknown Specific Character Set 'ISO_IR 999'/);
    expect(isKnownCharacterSet('ISO_IR 999')).toBe(false);
  });

  it('other single-byte sets: ISO_IR 144 (Cyrillic), ISO_IR 126 (Greek)', () => {
    expect(decoderFor('ISO_IR 144')(Buffer.from([0xbb, 0xde, 0xdd, 0xd4, 0xde, 0xdd]))).toBe('Лондон');
    expect(decoderFor('ISO_IR 126')(Buffer.from([0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2]))).toBe('Διονυσιος');
  });

  it('ISO 2022 with JIS X 0208 escapes (PS3.5 Annex H.3.1 example)', () => {
    const esc = '\u001b';
    const bytes = Buffer.from(
      `Yamada^Tarou=${esc}$B;3ED${esc}(B^${esc}$BB@O:${esc}(B=${esc}$B$d$^$@${esc}(B^${esc}$B$?$m$&${esc}(B`,
      'latin1',
    );
    expect(decoderFor('\\ISO 2022 IR 87')(bytes)).toBe('Yamada^Tarou=山田^太郎=やまだ^たろう');
  });

  it('ISO 2022 IR 149 (Korean, KS X 1001 in G1)', () => {
    const esc = '\u001b';
    // "Hong^Gildong=洪^吉洞" from PS3.5 H.3.2 in EUC-KR bytes after ESC $ ) C.
    const bytes = Buffer.concat([Buffer.from(`Hong^Gildong=${esc}$)C`, 'latin1'), Buffer.from([0xfb, 0xf3]), Buffer.from('^', 'latin1'), Buffer.from(`${esc}$)C`, 'latin1'), Buffer.from([0xd1, 0xce, 0xd4, 0xd7])]);
    expect(decoderFor('\\ISO 2022 IR 149')(bytes)).toBe('Hong^Gildong=洪^吉洞');
  });
});

describe('long headers', () => {
  it('a header longer than the 64 KiB head still parses (retry with more of the file)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-long-'));
    try {
      const file = path.join(dir, 'IM0001');
      fs.writeFileSync(file, syntheticDicom({ padding: 200_000, patientName: 'Long^Header' }));
      const result = parseDicomFileSync(file);
      expect(result.ok && result.header.patientName).toBe('Long^Header');
      expect(result.ok && result.header.studyInstanceUid).toBe('1.2.3.4.5');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
