/** Paths of the shared DICOM corpus (`../shared/data/dicom`, read-only) and its expected metadata. */
import fs from 'node:fs';
import path from 'node:path';

export const DICOM_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'dicom');

export interface ExpectedFile {
  readonly bytes: number;
  readonly agreed?: Readonly<Record<string, string>>;
  readonly values?: Readonly<Record<string, string>>;
  readonly parserErrors?: Readonly<Record<string, string | null>>;
}

export function expectedMetadata(): Record<string, ExpectedFile> {
  const json = JSON.parse(fs.readFileSync(path.join(DICOM_DIR, 'expected-metadata.json'), 'utf8')) as { files: Record<string, ExpectedFile> };
  return json.files;
}

/** Every file of the corpus except the JSON, sorted. */
export function corpusFiles(): string[] {
  return fs
    .readdirSync(DICOM_DIR)
    .filter((f) => !f.endsWith('.json'))
    .sort();
}

export function readCorpus(name: string): Buffer {
  return fs.readFileSync(path.join(DICOM_DIR, name));
}

export { element, syntheticDicom, type SyntheticInstance } from '../../src/imaging/synthetic-dicom';
