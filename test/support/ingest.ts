/**
 * The ingest job run without the service: its deps over a database of the test's, a blob store and
 * scratch folder under a folder of the test's, and a DICOM worker pool; and uploads recorded as the
 * upload route records them, for it to ingest.
 * @packageDocumentation
 */
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { BlobStore } from '../../src/blobs/blob-store';
import { insertCase } from '../../src/db/case-repository';
import type { Database } from '../../src/db/database';
import type { DicomWorkerPool } from '../../src/imaging/dicom-worker-pool';
import { loadTerminologyMappings } from '../../src/normalize/terminology';
import type { IngestDeps } from '../../src/uploads/ingest';
import type { FileKind } from '../../src/uploads/sniff';
import { insertUploadFiles } from '../../src/uploads/upload-repository';
import { sampleIntake } from './intake';

/**
 * The ingest job's deps: `db`, `pool`, blobs in `root/blobs`, zips unpacked in `root/ingest`, and
 * generous upload limits (20,000 zip entries, 4 GiB a case, a ratio of 200, 1 GiB a file).
 */
export function ingestDeps(db: Database, pool: DicomWorkerPool, root: string): IngestDeps {
  return {
    db,
    mappings: loadTerminologyMappings,
    blobs: new BlobStore(path.join(root, 'blobs')),
    pool,
    workDir: path.join(root, 'ingest'),
    uploads: { maxZipEntries: 20_000, maxCaseBytes: 4 * 2 ** 30, maxZipRatio: 200, maxFileBytes: 2 ** 30, tokenTtlSeconds: 3600, dicomParseTimeoutMs: 10_000 },
  };
}

/** A file of an upload recorded by {@link insertUpload}: its name, the kind the upload route sniffed, its bytes. */
export interface RecordedFile {
  readonly name: string;
  readonly kind: FileKind;
  readonly data: Buffer;
}

/**
 * A case (`records_pending`) of the sample intake's child named Doe^Archibald (the child of the shared
 * CR file) with one upload of `files`, from the family: their bytes stored in `blobs`, their rows
 * `received`, as the upload route leaves them. Answers the upload id.
 */
export async function insertUpload(db: Database, blobs: BlobStore, files: readonly RecordedFile[]): Promise<string> {
  const caseId = randomUUID();
  const intake = sampleIntake();
  await insertCase(db, {
    id: caseId, status: 'records_pending', intake: { ...intake, patient: { ...intake.patient, name: { family: 'Doe', given: ['Archibald'] } } },
    eligibility: {}, quote: {}, createdBy: 't', at: new Date(),
  });
  const uploadId = randomUUID();
  const rows = [];
  for (const [position, f] of files.entries()) {
    const { sha256, size } = await blobs.putBuffer(f.data);
    rows.push({ id: randomUUID(), caseId, uploadId, position, fileName: f.name, kind: f.kind, size, uploadedBy: 'family', blobSha256: sha256,
      sha1Base64: createHash('sha1').update(f.data).digest('base64') });
  }
  await insertUploadFiles(db, rows);
  return uploadId;
}
