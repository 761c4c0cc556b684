import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database';
import { logger } from '../log';
import { buildDocumentBundle } from '../normalize/bundle';
import { casePatientFullUrl } from '../normalize/case-patient';
import { buildComposition } from '../normalize/composition';
import { dedupe } from '../normalize/dedupe';
import { normalize } from '../normalize/normalize';
import { buildProvenances } from '../normalize/provenance';
import type { TerminologyMappings } from '../normalize/terminology';
import type { AssemblyOptions } from '../normalize/types';
import { loadAssemblyInput } from './assembly-input';
import { fillAttachmentHashes } from './attachment-hashes';
import { insertBundleVersion } from './bundle-repository';
import { completenessReport, type CompletenessReport } from './completeness';

export interface AssembleDeps {
  readonly db: Database;
  readonly mappings: () => TerminologyMappings;
  readonly now?: () => Date;
}

export interface AssembleRequest {
  /** Why this assembly ran: `pull:<pullId>`, `rebuild`, … */
  readonly trigger: string;
  /** Dedupe rules switched off for this assembly (undoes their merges). */
  readonly disabledRules?: readonly string[];
}

export interface AssembleResult {
  readonly version: number;
  readonly bundleId: string;
  readonly report: CompletenessReport;
  readonly entries: number;
}

/**
 * Assembles the case bundle from the raw store, as a pure derivation: normalize → fill attachment
 * hashes from the blob store → de-duplicate → Provenance → Composition → document Bundle, then
 * stores it as the case's next version with its completeness report. Running it again on the same
 * raw data gives the same bundle but for its identifier and timestamp.
 */
export async function assembleCase(deps: AssembleDeps, caseId: string, request: AssembleRequest): Promise<AssembleResult> {
  const started = process.hrtime.bigint();
  const input = await loadAssemblyInput(deps.db, caseId);
  const normalized = normalize({ caseId, intake: input.intake, sources: input.sources, raw: input.raw, mappings: deps.mappings() });
  fillAttachmentHashes(normalized.resources, input.attachments);
  const deduped = dedupe(normalized.resources, { disabledRules: request.disabledRules });
  const options: AssemblyOptions = {
    bundleId: randomUUID(),
    timestamp: (deps.now ?? (() => new Date()))().toISOString(),
    ...(request.disabledRules && request.disabledRules.length > 0 ? { disabledRules: request.disabledRules } : {}),
  };
  const provenances = buildProvenances({ resources: deduped.resources, merges: deduped.merges, sources: input.sources, options });
  const composition = buildComposition({
    subject: casePatientFullUrl(caseId),
    resources: deduped.resources,
    options,
    story: {
      diagnosis: input.intake.diagnosis.text,
      history: input.intake.history,
      reason: input.intake.reason,
      questions: input.intake.questions,
    },
    sources: input.sources,
    merges: deduped.merges,
  });
  const bundle = buildDocumentBundle({ composition, resources: deduped.resources, provenances, options });
  const report = completenessReport(input.sources, input.raw, normalized, deduped, input.attachments);
  const version = await insertBundleVersion(deps.db, {
    caseId,
    bundleId: options.bundleId,
    bundle,
    report,
    options: { disabledRules: request.disabledRules ?? [] },
    trigger: request.trigger,
  });
  logger.info('case assembled', {
    caseId,
    version,
    resources: bundle.entry?.length ?? 0,
    counts: { merged: report.totals.merged, leftOut: report.totals.leftOut },
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
  });
  return { version, bundleId: options.bundleId, report, entries: bundle.entry?.length ?? 0 };
}
