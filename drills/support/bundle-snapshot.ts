import type { Bundle } from 'fhir/r4';
import { findBundle } from '../../src/assembly/bundle-repository';
import { caseFhirIds } from '../../src/cases/fhir-ids';
import type { Database } from '../../src/db/database';

/**
 * A case bundle in a form two cases pulled from the same records compare by: everything that
 * names this case rather than the records (case id, the case's FHIR ids, its source and pull ids)
 * becomes a placeholder, and what changes with every assembly (`identifier`, `timestamp`,
 * Composition.date, Provenance.recorded) is dropped.
 */
export async function comparableBundle(db: Database, caseId: string, version: number): Promise<string> {
  const bundle = (await findBundle(db, caseId, version))?.bundle;
  if (!bundle) throw new Error(`case ${caseId} has no bundle version ${version}`);
  const names = new Map<string, string>([[caseId, '<case>']]);
  for (const [type, id] of Object.entries(caseFhirIds(caseId))) names.set(id, `<case-${type}>`);
  const sources = await db.query<{ id: string; name: string }>(
    'SELECT s.id, e.name FROM case_sources s JOIN endpoints e ON e.id = s.endpoint_id WHERE s.case_id = $1',
    [caseId],
  );
  for (const s of sources.rows) names.set(s.id, `<source:${s.name}>`);
  const pulls = await db.query<{ id: string }>('SELECT id FROM pulls WHERE case_id = $1 ORDER BY created_at', [caseId]);
  pulls.rows.forEach((p, i) => names.set(p.id, `<pull-${i + 1}>`));
  const stripped: Bundle = {
    ...bundle,
    identifier: undefined,
    timestamp: undefined,
    entry: bundle.entry?.map((e) =>
      e.resource?.resourceType === 'Composition' || e.resource?.resourceType === 'Provenance'
        ? { ...e, resource: { ...e.resource, date: undefined, recorded: undefined } as unknown as typeof e.resource }
        : e,
    ),
  };
  let text = JSON.stringify(stripped);
  for (const [id, placeholder] of names) text = text.split(id).join(placeholder);
  return text;
}

const UUID_URL = /^urn:uuid:([0-9a-f-]{36})$/;

/**
 * Renames, in `other`, the ids of entries that only it has (derived from ids of its own case, such
 * as the Composition's or a source's Provenance) to the ids of the entries of `reference` that only
 * it has and that are otherwise identical. The rename is one-to-one, so the texts are equal after
 * it only if the bundles are the same document under other case ids.
 */
export function alignDerivedIds(reference: string, other: string): string {
  const idsOnlyIn = (mine: Bundle, theirs: Bundle): Set<string> => {
    const their = new Set((theirs.entry ?? []).map((e) => e.fullUrl));
    return new Set((mine.entry ?? []).map((e) => UUID_URL.exec(e.fullUrl ?? '')?.[1]).filter((id): id is string => id !== undefined && !their.has(`urn:uuid:${id}`)));
  };
  const signatures = (bundle: Bundle, own: Set<string>): Map<string, string[]> => {
    const bySignature = new Map<string, string[]>();
    for (const entry of bundle.entry ?? []) {
      const id = UUID_URL.exec(entry.fullUrl ?? '')?.[1];
      if (!id || !own.has(id)) continue;
      let text = JSON.stringify(entry);
      for (const o of own) text = text.split(o).join('<derived>');
      bySignature.set(text, [...(bySignature.get(text) ?? []), id]);
    }
    return bySignature;
  };
  const a = JSON.parse(reference) as Bundle;
  const b = JSON.parse(other) as Bundle;
  const onlyA = idsOnlyIn(a, b);
  const onlyB = idsOnlyIn(b, a);
  const sigA = signatures(a, onlyA);
  let text = other;
  for (const [signature, idsB] of signatures(b, onlyB)) {
    const idsA = sigA.get(signature) ?? [];
    idsB.forEach((idB, i) => {
      const idA = idsA[i];
      if (idA) text = text.split(idB).join(idA);
    });
  }
  return text;
}

/** Where two comparable bundles first differ (a short window around it), or undefined when equal. */
export function firstDifference(a: string, bUnaligned: string): string | undefined {
  const b = alignDerivedIds(a, bUnaligned);
  if (a === b) return undefined;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return `at ${i}: …${a.slice(Math.max(0, i - 80), i + 80)}… vs …${b.slice(Math.max(0, i - 80), i + 80)}…`;
}
