/**
 * DiagnosticReport duplicates — rule `diagnosticreport:presented-form`.
 *
 * Approach: the same report at two sources has the same presentedForm bytes: match on
 * attachment hash, then URL, then business identifier ({@link sameContent}); a report
 * without presentedForm matches only by identifier (a shared accession). Results of a
 * merged report are unioned (after their own merges, so each survivor is listed once).
 * `entered-in-error`, or a malformed presentedForm (an element that is not an attachment):
 * never merged.
 * @see https://hl7.org/fhir/R4/diagnosticreport.html
 * @packageDocumentation
 */
import type { Attachment, DiagnosticReport } from 'fhir/r4';
import { contentBlocking, contentIdentity } from './content-identity';
import { dedupeWith } from './engine';
import type { DedupeRule } from './rule';

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
  approach: 'same presentedForm hash (declared or SHA-1 of inline data), else same URL, else same identifier',
  blocking(resources) {
    return contentBlocking(resources.map((r) => {
      const d = r.resource as DiagnosticReport;
      return contentIdentity(presentedForms(d), d.identifier, r.sourceId, d.status === 'entered-in-error');
    }));
  },
};

/** De-duplicates DiagnosticReports only. */
export const dedupeDiagnosticReports = dedupeWith(diagnosticReportRule);
