/**
 * Whether an error answer names the problem: `application/problem+json` with a non-empty `detail`,
 * or (FHIR routes) an OperationOutcome whose every issue has `diagnostics` or an `expression`.
 */
export function namesTheProblem(contentType: string, text: string): boolean {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return false;
  }
  if (body === null || typeof body !== 'object') return false;
  if (/application\/problem\+json/.test(contentType)) {
    const detail = (body as { detail?: unknown }).detail;
    return typeof detail === 'string' && detail.trim().length > 0;
  }
  if (/application\/fhir\+json/.test(contentType) && (body as { resourceType?: unknown }).resourceType === 'OperationOutcome') {
    const issues = (body as { issue?: unknown }).issue;
    return (
      Array.isArray(issues) &&
      issues.length > 0 &&
      issues.every((issue: { diagnostics?: unknown; expression?: unknown }) => (typeof issue.diagnostics === 'string' && issue.diagnostics.length > 0) || (Array.isArray(issue.expression) && issue.expression.length > 0))
    );
  }
  return false;
}
