/**
 * DiagnosticReport duplicates — rule `diagnosticreport:presented-form`.
 *
 * Approach: the same report at two sources has the same presentedForm bytes: match on
 * attachment hash, then URL, then business identifier ({@link sameContent}); a report
 * without presentedForm matches only by identifier (a shared accession). Matched by
 * identifier alone, two reports merge only when their status and conclusion agree
 * ({@link reportClaim}): an accession is shared by the `final` report ("No villous atrophy")
 * and the `amended` one that corrects it ("Marsh 3a villous atrophy"), and merged, the more
 * complete would hide the other — both are kept, so the specialist sees both. Results of a
 * merged report are unioned (after their own merges, so each survivor is listed once).
 * `entered-in-error`, or a malformed presentedForm (an element that is not an attachment):
 * never merged.
 * @see https://hl7.org/fhir/R4/diagnosticreport.html
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.status
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.conclusion
 * @packageDocumentation
 */
import type { Attachment, DiagnosticReport } from 'fhir/r4';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import { stableStringify } from './json';
import { codeKeys, codingsOf } from './keys';
import type { DedupeRule } from './rule';

/**
 * What a report states beyond its identifier: its status (a modifier element), its conclusion
 * (whitespace collapsed, any case) and its conclusion codes. An absent conclusion differs from
 * a present one: merged, the one source's conclusion would be shown as both sources' claim.
 */
function reportClaim(d: DiagnosticReport): string {
  const conclusion = typeof d.conclusion === 'string' ? d.conclusion.trim().replace(/\s+/g, ' ').toLowerCase() : null;
  const codes = [...new Set(codeKeys(codingsOf(...(Array.isArray(d.conclusionCode) ? d.conclusionCode : []))))].sort();
  return stableStringify({ status: d.status ?? null, conclusion, codes });
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
  approach: 'same presentedForm hash (declared or SHA-1 of inline data), else same URL, else same identifier with the same status and conclusion',
  blocking(resources) {
    return contentBlocking(resources.map((r) => {
      const d = r.resource as DiagnosticReport;
      return contentIdentity(presentedForms(d), d.identifier, r.sourceId, d.status === 'entered-in-error', reportClaim(d));
    }));
  },
};

/** De-duplicates DiagnosticReports only. */
export const dedupeDiagnosticReports = dedupeWith(diagnosticReportRule);
