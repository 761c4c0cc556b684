/**
 * Batch and transaction Bundles (`POST [base]`), processed by Medplum's batch processor with the
 * gaps of its in-memory use filled:
 * - Medplum refuses transactions with more than 50 updates (and 8 entries when one is conditional)
 *   because its server runs them in one database transaction. Here the processor runs in batch mode
 *   over the whole Bundle, so a 700-entry Synthea transaction works and its `urn:uuid` references are
 *   rewritten across all entries, and atomicity comes from the repository's write journal: if any
 *   entry fails, every write is undone and the transaction answers with that entry's error.
 * - MemoryRepository has no transactions at all (`withTransaction` just runs the callback).
 * - Conditional references are resolved first (conditional-references.ts).
 *
 * @see https://hl7.org/fhir/R4/http.html#transaction
 */
import { badRequest, getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { FhirRequest, FhirRouter } from '@medplum/fhir-router';
import { processBatch } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import type { SandboxRepository } from '../repository/sandbox-repository';
import { resolveConditionalReferences } from './conditional-references';

export type BatchResult = { ok: true; response: Bundle } | { ok: false; status: number; outcome: OperationOutcome };

/** Processes a `batch` or `transaction` Bundle (mutated in place: ids assigned, references rewritten). */
export async function processBatchOrTransaction(bundle: Bundle, repo: SandboxRepository, router: FhirRouter): Promise<BatchResult> {
  if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'batch' && bundle.type !== 'transaction')) {
    return failure(badRequest('Expected a Bundle of type batch or transaction'));
  }
  if (!bundle.entry?.length) {
    return { ok: true, response: { resourceType: 'Bundle', type: `${bundle.type}-response` } };
  }
  const isTransaction = bundle.type === 'transaction';
  const unresolved = resolveConditionalReferences(bundle, repo);
  if (isTransaction && unresolved.length > 0) {
    const first = unresolved[0];
    return failure(
      conditionalReferenceOutcome(first.reference, first.matches, `Bundle.entry[${first.entryIndex}].resource`),
      first.matches > 1 ? 412 : 400
    );
  }
  const createdByUpdate = updatesThatCreate(bundle, repo);
  const request: FhirRequest = { method: 'POST', url: '', pathname: '', body: bundle, params: {}, query: {}, config: { transactions: false } };
  if (!isTransaction) {
    for (const { entryIndex } of unresolved) {
      // Medplum answers an entry without a request method with 400 and skips it; the outcome is replaced below.
      const entry = bundle.entry[entryIndex];
      delete entry.request;
    }
    const response = await processBatch(request, repo, router, bundle);
    markUnresolvedEntries(response, unresolved);
    markCreatedByUpdate(response, createdByUpdate);
    return { ok: true, response };
  }
  try {
    const response = await repo.atomically(async () => {
      const result = await processBatch(request, repo, router, bundle);
      const failedIndex = (result.entry ?? []).findIndex((entry) => Number(entry.response?.status ?? '500') >= 400);
      if (failedIndex >= 0) {
        throw new TransactionEntryError(failedIndex, result.entry?.[failedIndex] ?? {});
      }
      markCreatedByUpdate(result, createdByUpdate);
      return result;
    });
    return { ok: true, response };
  } catch (err) {
    if (err instanceof TransactionEntryError) {
      const outcome = err.entry.response?.outcome ?? badRequest('Transaction entry failed');
      return failure(withEntryLocation(outcome, err.index), Number(err.entry.response?.status ?? 400));
    }
    return failure(normalizeOperationOutcome(err));
  }
}

/**
 * Indexes of `PUT Type/id` entries whose resource does not exist yet. Medplum answers every update
 * with 200; FHIR says an update that creates answers 201 (https://hl7.org/fhir/R4/http.html#update).
 */
function updatesThatCreate(bundle: Bundle, repo: SandboxRepository): Set<number> {
  const indexes = new Set<number>();
  (bundle.entry ?? []).forEach((entry, index) => {
    const match = entry.request?.method === 'PUT' ? /^\/?([A-Z][A-Za-z]+)\/([^/?]+)$/.exec(entry.request.url ?? '') : null;
    if (match && !repo.getStored(match[1], match[2])) {
      indexes.add(index);
    }
  });
  return indexes;
}

function markCreatedByUpdate(response: Bundle, indexes: ReadonlySet<number>): void {
  for (const index of indexes) {
    const entryResponse = response.entry?.[index]?.response;
    if (entryResponse?.status === '200') {
      entryResponse.status = '201';
    }
  }
}

class TransactionEntryError extends Error {
  constructor(
    readonly index: number,
    readonly entry: BundleEntry
  ) {
    super(`Transaction entry ${index} failed`);
  }
}

function failure(outcome: OperationOutcome, status = getStatus(outcome)): BatchResult {
  return { ok: false, status, outcome };
}

function conditionalReferenceOutcome(reference: string, matches: number, expression: string): OperationOutcome {
  return badRequest(`Conditional reference ${reference} matched ${matches === 0 ? 'no resource' : `${matches} resources`}`, expression);
}

function withEntryLocation(outcome: OperationOutcome, index: number): OperationOutcome {
  return {
    ...outcome,
    issue: (outcome.issue ?? []).map((issue) => ({
      ...issue,
      diagnostics: `${issue.diagnostics ? issue.diagnostics + '; ' : ''}transaction rolled back at Bundle.entry[${index}]`,
    })),
  };
}

function markUnresolvedEntries(response: Bundle, unresolved: ReturnType<typeof resolveConditionalReferences>): void {
  for (const { entryIndex, reference, matches } of unresolved) {
    const entry = response.entry?.[entryIndex];
    if (entry) {
      const outcome = conditionalReferenceOutcome(reference, matches, `Bundle.entry[${entryIndex}].resource`);
      entry.response = { status: matches > 1 ? '412' : '400', outcome };
      delete entry.resource;
    }
  }
}
