/**
 * DiagnosticReport duplicates — rule `diagnosticreport:presented-form`.
 *
 * Approach: the same report at two sources has the same presentedForm bytes: match on
 * the same SET of attachment hashes, then of URLs, then a business identifier
 * ({@link sameContent}); a report without presentedForm matches only by identifier (a shared
 * accession). One shared attachment is not enough: a CBC and a lipid report, each with its own
 * PDF plus the lab's common boilerplate PDF, are two reports (merged, the survivor keeps only its
 * own presentedForm, and the lipid PDF and its "Hyperlipidemia" conclusion would vanish).
 * Matched by identifier alone, two reports merge only when their status and conclusion agree
 * ({@link reportClaim}: an absent conclusion differs from a present one) and they share a code
 * ({@link reportCodes}: a coding after mapping, else the text): an accession is shared by the
 * `final` report ("No villous atrophy") and the `amended` one that corrects it ("Marsh 3a villous
 * atrophy"), and by a CBC and a CMP drawn together; merged, one would disappear — both are kept,
 * so the specialist sees both.
 * On every tier, reports that state different things are never merged, not even through a report
 * stating none of them ({@link reportState} as the cluster state): another status (a
 * `preliminary` "no fracture" carries the same PDF as the `final` "Buckle fracture": merged, the
 * survivor's status and conclusion, possibly the superseded ones, would stand for both — kept
 * apart, each shows its status, rather than ranking statuses: two `final` reports that disagree
 * have no rank, and a final survivor without a conclusion would be filled with the preliminary's),
 * another conclusion or conclusion codes, or another effective date (when both have one: one date
 * would vanish). A conclusion only one of two identical PDFs states contradicts nothing: they merge.
 * Results of a merged report are unioned (after their own merges, so each survivor is listed once).
 * `entered-in-error`, or a malformed presentedForm (an element that is not an attachment):
 * never merged.
 * @see https://hl7.org/fhir/R4/diagnosticreport.html
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.status
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.conclusion
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.effective_x_
 * @packageDocumentation
 */
import type { Attachment, DiagnosticReport } from 'fhir/r4';
import type { NormalizedResource } from '../types';
import type { ClusterState } from './cluster';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import { stableStringify } from './json';
import { codeKeys, codingsOf, instantKey, isElement } from './keys';
import type { DedupeRule } from './rule';

/** A report's conclusion, whitespace collapsed and lower case; undefined when it states none. */
function conclusionOf(d: DiagnosticReport): string | undefined {
  return typeof d.conclusion === 'string' ? d.conclusion.trim().replace(/\s+/g, ' ').toLowerCase() : undefined;
}

/** `system|code` of the report's conclusion codes, sorted and deduplicated. */
function conclusionCodesOf(d: DiagnosticReport): string[] {
  return [...new Set(codeKeys(codingsOf(...(Array.isArray(d.conclusionCode) ? d.conclusionCode : []))))].sort();
}

/**
 * What a report states beyond its identifier: its status (a modifier element), its conclusion
 * (whitespace collapsed, any case) and its conclusion codes. An absent conclusion differs from
 * a present one: merged by accession alone, the one source's conclusion would be shown as both
 * sources' claim.
 */
function reportClaim(d: DiagnosticReport): string {
  return stableStringify({ status: d.status ?? null, conclusion: conclusionOf(d) ?? null, codes: conclusionCodesOf(d) });
}

/**
 * What the report is, for an identifier-only match: `system|code` of its code's codings and of
 * the codings the mapping gave it but took back (`matchCodings`: the report is still of that
 * code), so team B's local CBC code with the mapped LOINC 58410-2 meets team A's 58410-2; a code
 * with text only gives its text (whitespace collapsed, lower case). No code: an empty set, so the
 * report is never matched by identifier alone.
 */
function reportCodes(r: NormalizedResource): ReadonlySet<string> {
  const d = r.resource as DiagnosticReport;
  const keys = new Set(codeKeys([...codingsOf(d.code), ...(r.matchCodings ?? [])]));
  if (keys.size === 0 && isElement(d.code) && typeof d.code.text === 'string' && d.code.text.trim() !== '') {
    keys.add(`text:${d.code.text.trim().replace(/\s+/g, ' ').toLowerCase()}`);
  }
  return keys;
}

/**
 * The effective date (`effectiveDateTime`, else the start of `effectivePeriod`) as two
 * dimensions: the instant (epoch ms, for a value with a time) and the day (the UTC day of a value
 * with a time, else the date as written). Two values with times conflict when their instants
 * differ; a date alone conflicts with another date, or with the UTC day of a value with a time (a
 * local evening is the next UTC day: the two then stay apart, both shown). None or unreadable:
 * nothing stated.
 */
function effectiveDimensions(d: DiagnosticReport): [string | undefined, string | undefined] {
  const value = typeof d.effectiveDateTime === 'string' ? d.effectiveDateTime : isElement(d.effectivePeriod) ? d.effectivePeriod.start : undefined;
  const instant = typeof value === 'string' ? instantKey(value) : undefined;
  if (value === undefined || instant === undefined) return [undefined, undefined];
  if (instant.startsWith('d:')) return [undefined, value];
  // `instant` is the epoch milliseconds instantKey already parsed.
  return [instant, new Date(Number(instant)).toISOString().slice(0, 10)];
}

/**
 * What no match may contradict, on any tier, as cluster state dimensions (`cluster.ts`: a group
 * never holds two values of a dimension, not even through a member stating none): the status,
 * the conclusion, the conclusion codes, and the effective instant and day. Identical bytes say
 * what was rendered, not which status the source gives it or what it concluded.
 */
function reportState(d: DiagnosticReport): ClusterState {
  const codes = conclusionCodesOf(d);
  return [typeof d.status === 'string' ? d.status : undefined, conclusionOf(d), codes.length > 0 ? codes.join(',') : undefined, ...effectiveDimensions(d)];
}

/** The presentedForm attachments; `[undefined]` (never merged) when it is present but not a list. */
function presentedForms(d: DiagnosticReport): readonly (Attachment | undefined)[] {
  const forms: unknown = d.presentedForm;
  if (forms === undefined) return [];
  return Array.isArray(forms) ? (forms as (Attachment | undefined)[]) : [undefined];
}

/** The rule. */
export const diagnosticReportRule: DedupeRule = {
  name: 'diagnosticreport:presented-form',
  resourceType: 'DiagnosticReport',
  approach: 'same set of presentedForm hashes (declared or SHA-1 of inline data), else of URLs, else same identifier with the same status, conclusion and a shared code; never another status, conclusion or effective date',
  blocking(resources) {
    const spec = contentBlocking(resources.map((r) => {
      const d = r.resource as DiagnosticReport;
      return contentIdentity(presentedForms(d), d.identifier, r.sourceId, d.status === 'entered-in-error', reportClaim(d), reportCodes(r));
    }));
    const states = resources.map((r) => reportState(r.resource as DiagnosticReport));
    return { ...spec, state: (i) => states[i] };
  },
};

/** De-duplicates DiagnosticReports only. */
export const dedupeDiagnosticReports = dedupeWith(diagnosticReportRule);
