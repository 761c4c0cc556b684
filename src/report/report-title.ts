/**
 * The report's names, apart from the PDF rendering (`report-pdf.ts`) so that what only needs a
 * title (the opinion routes, delivery) does not load pdf-lib.
 * @packageDocumentation
 */

/** The program's name, printed at the top of every page. */
export const PROGRAM_NAME = 'Online Second Opinion Program';

/** Title and file name of a report version. */
export function reportTitle(input: { readonly caseId: string; readonly version: number; readonly status: 'final' | 'amended' }): string {
  return `Second opinion report, case ${input.caseId}, version ${input.version}${input.status === 'amended' ? ' (amended)' : ''}`;
}
