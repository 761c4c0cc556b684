import { operationOutcome } from '../../src/http/errors';
import { HttpProblem } from '../../src/http/problem';

/**
 * The issue type and severity of each status a FHIR route may answer
 * (https://hl7.org/fhir/R4/valueset-issue-type.html, https://hl7.org/fhir/R4/valueset-issue-severity.html):
 * `fatal` only for our own 500; a temporary refusal is `transient`, so a FHIR client knows to retry.
 * (The 503 of a FHIR route over HTTP: sec-auth-jwks.part.ts.)
 */
it.each([
  [400, 'error', 'invalid'],
  [401, 'error', 'login'],
  [403, 'error', 'forbidden'],
  [404, 'error', 'not-found'],
  [405, 'error', 'not-supported'],
  [406, 'error', 'not-supported'],
  [409, 'error', 'conflict'],
  [412, 'error', 'conflict'],
  [413, 'error', 'too-costly'],
  [415, 'error', 'not-supported'],
  [422, 'error', 'processing'],
  [429, 'error', 'throttled'],
  [500, 'fatal', 'exception'],
  [502, 'error', 'exception'],
  [503, 'error', 'transient'],
  [504, 'error', 'transient'],
] as const)('%i → severity %s, code %s', (status, severity, code) => {
  expect(operationOutcome(new HttpProblem(status, 'Title', 'What happened.')).issue).toEqual([{ severity, code, diagnostics: 'What happened.' }]);
  // Field problems keep the status's code, one issue each.
  const withFields = operationOutcome(new HttpProblem(status, 'Title', 'x', [{ field: 'query.version', pointer: '#/query/version', detail: 'bad' }]));
  expect(withFields.issue).toEqual([{ severity: 'error', code, diagnostics: 'bad', location: ['http.version'] }]);
});
