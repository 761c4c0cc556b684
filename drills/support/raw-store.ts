import { createHash } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import type { Database } from '../../src/db/database';
import { scanSearchPage } from '../../src/fhir';
import { pageEntries } from '../../src/pull/page-resources';

/**
 * What a pull left in the raw store, in forms two runs can be compared by, and the integrity
 * checks of what is stored (every page parses and matches its hash, every resource row is the
 * resource of its page, no page stored twice, counters equal rows).
 */

/** Every raw resource of the case as `endpoint|type|id|version|sha256`, sorted. */
export async function rawStoreKeys(db: Database, caseId: string): Promise<string[]> {
  const { rows } = await db.query<{ k: string }>(
    `SELECT e.name || '|' || r.resource_type || '|' || r.remote_id || '|' || r.version_id || '|' || r.sha256 AS k
       FROM raw_resources r JOIN case_sources s ON s.id = r.source_id JOIN endpoints e ON e.id = s.endpoint_id
      WHERE r.case_id = $1 ORDER BY 1`,
    [caseId],
  );
  return rows.map((r) => r.k);
}

/** What one key list lacks and adds compared with another. */
export function keyDiff(expected: readonly string[], actual: readonly string[]): { missing: string[]; extra: string[]; duplicated: string[] } {
  const want = new Set(expected);
  const seen = new Map<string, number>();
  for (const k of actual) seen.set(k, (seen.get(k) ?? 0) + 1);
  return {
    missing: expected.filter((k) => !seen.has(k)),
    extra: [...seen.keys()].filter((k) => !want.has(k)),
    duplicated: [...seen].filter(([, n]) => n > 1).map(([k]) => k),
  };
}

/** The integrity counts of a case's raw store (all zero but `pages` and `resources` when healthy). */
export interface RawStoreIntegrity {
  readonly pages: number;
  readonly resources: number;
  /** Pages whose stored bytes are not a JSON Bundle. */
  readonly unparsablePages: number;
  /** Pages whose bytes do not hash to their stored sha256. */
  readonly pageHashMismatches: number;
  /** Resource rows not found, with the same sha256 and content, in the page they name. */
  readonly resourceMismatches: number;
  /** The same page body stored twice for one task. */
  readonly duplicatePages: number;
  /** Tasks whose pages/resources counters differ from the rows stored for them. */
  readonly counterMismatches: number;
  /** Which tasks, with their counters and stored rows. */
  readonly counterMismatchDetails: readonly string[];
}

/** Canonical JSON (keys sorted) so jsonb (which reorders keys) compares with the page's JSON. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Re-reads every stored page and resource row of the case and counts what does not hold up. */
export async function rawStoreIntegrity(db: Database, caseId: string): Promise<RawStoreIntegrity> {
  const pages = await db.query<{ task_id: string; page_no: number; body: Buffer; sha256: string }>(
    `SELECT p.task_id, p.page_no, p.body, p.sha256 FROM raw_pages p JOIN pull_tasks t ON t.id = p.task_id JOIN pulls u ON u.id = t.pull_id WHERE u.case_id = $1`,
    [caseId],
  );
  const resources = await db.query<{ task_id: string; page_no: number; resource_type: string; remote_id: string; version_id: string; sha256: string; resource: unknown }>(
    'SELECT task_id, page_no, resource_type, remote_id, version_id, sha256, resource FROM raw_resources WHERE case_id = $1',
    [caseId],
  );
  let unparsablePages = 0;
  let pageHashMismatches = 0;
  let duplicatePages = 0;
  const pageResources = new Map<string, Map<string, { sha256: string; canonical: string }>>();
  const bodiesPerTask = new Map<string, Set<string>>();
  for (const page of pages.rows) {
    const body = Buffer.from(page.body);
    const sha = createHash('sha256').update(body).digest('hex');
    if (sha !== page.sha256) pageHashMismatches += 1;
    const seen = bodiesPerTask.get(page.task_id) ?? new Set<string>();
    if (seen.has(sha)) duplicatePages += 1;
    seen.add(sha);
    bodiesPerTask.set(page.task_id, seen);
    let bundle: Bundle;
    try {
      bundle = JSON.parse(body.toString('utf8')) as Bundle;
      if (bundle.resourceType !== 'Bundle') throw new Error('not a Bundle');
    } catch {
      unparsablePages += 1;
      continue;
    }
    const { entries, source } = pageEntries(scanSearchPage(body, body.length, 'https://raw-store.invalid/'));
    const inPage = entries.map((e): [string, { sha256: string; canonical: string }] => [
      `${e.type}|${e.id}|${e.versionId}`,
      { sha256: e.sha256, canonical: canonicalJson(JSON.parse((source ?? body).toString('utf8', e.offset, e.offset + e.length))) },
    ]);
    pageResources.set(`${page.task_id}#${page.page_no}`, new Map(inPage));
  }
  let resourceMismatches = 0;
  for (const row of resources.rows) {
    const fromPage = pageResources.get(`${row.task_id}#${row.page_no}`)?.get(`${row.resource_type}|${row.remote_id}|${row.version_id}`);
    if (!fromPage || fromPage.sha256 !== row.sha256 || fromPage.canonical !== canonicalJson(row.resource)) resourceMismatches += 1;
  }
  const counters = await db.query<{ query_key: string; pages: number; stored_pages: number; resources: number; stored_resources: number }>(
    `SELECT * FROM (
       SELECT t.query_key, t.pages, t.resources,
              (SELECT count(*)::int FROM raw_pages p WHERE p.task_id = t.id) AS stored_pages,
              (SELECT count(*)::int FROM raw_resources r WHERE r.task_id = t.id) AS stored_resources
         FROM pull_tasks t JOIN pulls u ON u.id = t.pull_id WHERE u.case_id = $1) c
      WHERE c.pages <> c.stored_pages OR c.resources <> c.stored_resources`,
    [caseId],
  );
  return {
    pages: pages.rows.length,
    resources: resources.rows.length,
    unparsablePages,
    pageHashMismatches,
    resourceMismatches,
    duplicatePages,
    counterMismatches: counters.rows.length,
    counterMismatchDetails: counters.rows.map((c) => `${c.query_key}: pages ${c.pages} (stored ${c.stored_pages}), resources ${c.resources} (stored ${c.stored_resources})`),
  };
}
