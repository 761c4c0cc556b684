/**
 * The child's Patient as a query of the pull read it: in a page just committed, or, for a run that
 * resumed after its last page was committed (its worker died in between), in the pages the task stored
 * (`raw_pages`, the bytes as received: https://hl7.org/fhir/R4/bundle.html#searchset).
 * @packageDocumentation
 */
import type { Patient } from 'fhir/r4';
import type { Queryable } from '../db/database';
import { scanSearchPage } from '../fhir';
import { pageEntries, type PageEntries } from './page-resources';

/**
 * The child's Patient (`Patient/<childId>`) among a page's resources, parsed from its bytes; the last
 * one when a page holds it twice. Undefined when the page does not hold it.
 * @param body the page's bytes (where the entries' offsets point unless `entries.source` is set)
 */
export function childPatientIn(entries: PageEntries, body: Buffer, childId: string): Patient | undefined {
  let found: Patient | undefined;
  for (const e of entries.entries) {
    if (e.type !== 'Patient' || e.id !== childId) continue;
    const bytes = (entries.source ?? body).subarray(e.offset, e.offset + e.length);
    found = (e.resource ?? JSON.parse(bytes.toString('utf8'))) as Patient;
  }
  return found;
}

/**
 * The child's Patient in the latest of the task's stored pages that holds it (the pages are read one
 * by one, newest first; those of an expired run the query started over from come last, being numbered
 * first). Undefined when none does.
 */
export async function storedChildPatient(db: Queryable, taskId: string, childId: string, baseUrl: string): Promise<Patient | undefined> {
  const { rows: pages } = await db.query<{ page_no: number }>('SELECT page_no FROM raw_pages WHERE task_id = $1 ORDER BY page_no DESC', [taskId]);
  for (const { page_no: pageNo } of pages) {
    const { rows } = await db.query<{ body: Buffer }>('SELECT body FROM raw_pages WHERE task_id = $1 AND page_no = $2', [taskId, pageNo]);
    const body = rows[0]?.body;
    if (!body) continue;
    const patient = childPatientIn(pageEntries(scanSearchPage(body, body.length, baseUrl)), body, childId);
    if (patient) return patient;
  }
  return undefined;
}
