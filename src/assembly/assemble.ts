import { randomUUID } from 'node:crypto';
import type { Bundle } from 'fhir/r4';
import type { Database, Queryable } from '../db/database';
import { insertCaseEvent } from '../db/case-repository';
import { primaryRole, type Principal } from '../http/auth';
import { logger } from '../log';
import { buildDocumentBundle } from '../normalize/bundle';
import { casePatientFullUrl } from '../normalize/case-patient';
import { buildComposition } from '../normalize/composition';
import { dedupe, DEDUPE_RULE_NAMES } from '../normalize/dedupe';
import { normalize } from '../normalize/normalize';
import { buildProvenances } from '../normalize/provenance';
import type { TerminologyMappings } from '../normalize/terminology';
import type { AssemblyOptions, DedupeResult } from '../normalize/types';
import { loadAssemblyInput, type AssemblyInput } from './assembly-input';
import { fillAttachmentHashes } from './attachment-hashes';
import { latestDisabledRules, StaleAssemblyError, takeReadSeq, type InheritedRules } from './assembly-order';
import { insertBundleVersion } from './bundle-repository';
import { completenessReport, countPulled, type CompletenessReport } from './completeness';
import { PhaseTimer } from './phase-timer';
import { processAssemblyMemory, type AssemblyMemory } from './assembly-memory';
import { countRawResources } from './raw-resource-stream';
import { announceRecordsUpdated } from './records-updated';
import { conflict } from '../http/problem';
import { withUploads } from '../uploads/upload-resources';
import { bundleHasImaging, offerRadiologyReview } from '../cases/radiology-offer';

export interface AssembleDeps {
  readonly db: Database;
  readonly mappings: () => TerminologyMappings;
  readonly now?: () => Date;
  /** The heap budget assemblies share (default: the process's, {@link processAssemblyMemory}). */
  readonly assemblyMemory?: AssemblyMemory;
}

export interface AssembleRequest {
  /** Why this assembly ran: `pull:<pullId>`, `rebuild`, … */
  readonly trigger: string;
  /**
   * Dedupe rules switched off for this assembly (undoes their merges). Omitted: the rules the case's
   * latest version had switched off, so that a case manager's choice (a rebuild with a rule off)
   * holds for the pulls, uploads and source changes that follow, until a rebuild says otherwise.
   */
  readonly disabledRules?: readonly string[];
  /**
   * Someone asked for this assembly (a rebuild): written on the case timeline (`bundle_rebuilt`, who,
   * why, the version and the rules switched off) in the transaction that stores the version.
   */
  readonly requestedBy?: { readonly actor: Principal; readonly reason?: string };
}

export interface AssembleResult {
  readonly version: number;
  readonly bundleId: string;
  readonly report: CompletenessReport;
  readonly entries: number;
  /** Wall time per phase (ms): read, normalize, dedupe, compose, store. */
  readonly timings: Readonly<Record<string, number>>;
}

/**
 * Normalize → fill attachment hashes → de-duplicate, and the completeness report of both. Its own
 * function so that the normalized set (the duplicates dedupe folded away among it) and the raw
 * wrappers are garbage once it returns, before the Composition and Bundle are built.
 */
function normalizeAndDedupe(
  deps: AssembleDeps, caseId: string, input: AssemblyInput, ownedRows: number, request: AssembleRequest, phases: PhaseTimer,
): { deduped: DedupeResult; report: CompletenessReport } {
  const pulled = countPulled(input.raw);
  // The first `ownedRows` raw objects were parsed from the raw store for this assembly only: they are
  // normalized in place (no copy of the case). Resources added after them (uploads) are built in code
  // and may share sub-objects, so they are copied first.
  for (let i = ownedRows; i < input.raw.length; i++) {
    const r = input.raw[i];
    // A JSON round trip, not structuredClone: under jest's vm contexts structuredClone returns objects of
    // another realm, which the plain-JSON check of normalize refuses.
    if (r) input.raw[i] = { ...r, resource: JSON.parse(JSON.stringify(r.resource)) as typeof r.resource };
  }
  const normalized = normalize({ caseId, intake: input.intake, sources: input.sources, raw: input.raw, mappings: deps.mappings(), consumeRaw: true });
  // Drop the raw wrappers (and the superseded versions only they still hold).
  input.raw.length = 0;
  phases.lap('normalize');
  fillAttachmentHashes(normalized.resources, input.attachments);
  const deduped = dedupe(normalized.resources, { disabledRules: request.disabledRules });
  const report = completenessReport(input.sources, pulled, normalized, deduped, input.attachments);
  phases.lap('dedupe');
  return { deduped, report };
}

/** One assembly, built and not stored yet. */
interface BuiltAssembly {
  readonly bundle: Bundle;
  readonly report: CompletenessReport;
  readonly bundleId: string;
}

/** Reads the raw store and builds the bundle: normalize → … → document Bundle (nothing stored). */
async function buildAssembly(deps: AssembleDeps, caseId: string, request: AssembleRequest, phases: PhaseTimer): Promise<BuiltAssembly> {
  const loaded = await loadAssemblyInput(deps.db, caseId);
  const ownedRows = loaded.raw.length;
  // Family uploads join as one more source (origin family-upload).
  const input = await withUploads(deps.db, loaded);
  phases.lap('read');
  const { deduped, report } = normalizeAndDedupe(deps, caseId, input, ownedRows, request, phases);
  const options: AssemblyOptions = {
    bundleId: randomUUID(),
    timestamp: (deps.now ?? (() => new Date()))().toISOString(),
    ...(request.disabledRules && request.disabledRules.length > 0 ? { disabledRules: request.disabledRules } : {}),
  };
  // A removed source has nothing in the bundle: its Provenance and its name in the narrative go too.
  const sources = input.sources.filter((s) => s.removedReason === undefined);
  const provenances = buildProvenances({ resources: deduped.resources, merges: deduped.merges, sources, options });
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
    sources,
    merges: deduped.merges,
  });
  const bundle = buildDocumentBundle({ composition, resources: deduped.resources, provenances, options });
  phases.lap('compose');
  return { bundle, report, bundleId: options.bundleId };
}

/**
 * The rules switched off for the case's latest version, those of them the code still has (a rule
 * renamed since is not carried over: an unknown name would fail every assembly of the case).
 */
async function inheritedRules(db: Database, caseId: string): Promise<InheritedRules> {
  const latest = await latestDisabledRules(db, caseId);
  return { fromVersion: latest.fromVersion, disabledRules: latest.disabledRules.filter((r) => DEDUPE_RULE_NAMES.includes(r)) };
}

/** The timeline event of an assembly someone asked for: who, why, which version, which rules off. */
async function recordRebuild(tx: Queryable, caseId: string, version: number, disabledRules: readonly string[], by: NonNullable<AssembleRequest['requestedBy']>): Promise<void> {
  await insertCaseEvent(tx, {
    caseId,
    type: 'bundle_rebuilt',
    actorSub: by.actor.sub,
    actorRole: primaryRole(by.actor),
    ...(by.reason !== undefined ? { reason: by.reason } : {}),
    data: { version, disabledRules },
  });
}

/**
 * How many times an assembly reads again because another one, which began reading after it, stored
 * its version first. Each new read begins after that version was stored, so only yet another
 * assembly finishing first can make it stale again.
 */
const MAX_READS = 5;

/**
 * Assembles the case bundle from the raw store, as a pure derivation: normalize → fill attachment
 * hashes from the blob store → de-duplicate → Provenance → Composition → document Bundle, then
 * stores it as the case's next version with its completeness report. Running it again on the same
 * raw data gives the same bundle but for its identifier and timestamp.
 *
 * Assemblies of one case may run at once (a pull's, an upload's, a source change's, a rebuild): the
 * latest version is always from the latest read. One whose read began before that of a version
 * already stored meanwhile is not stored; it reads again ({@link StaleAssemblyError}).
 */
export async function assembleCase(deps: AssembleDeps, caseId: string, request: AssembleRequest): Promise<AssembleResult> {
  // The whole case is held in memory: reserve it from the process's budget first (assembly-memory.ts).
  const release = await (deps.assemblyMemory ?? processAssemblyMemory).reserve(await countRawResources(deps.db, caseId));
  try {
    return await assembleWithinBudget(deps, caseId, request);
  } finally {
    release();
  }
}

/** {@link assembleCase}, its memory reserved. */
async function assembleWithinBudget(deps: AssembleDeps, caseId: string, request: AssembleRequest): Promise<AssembleResult> {
  const phases = new PhaseTimer();
  for (let read = 1; ; read++) {
    const readSeq = await takeReadSeq(deps.db);
    const inherited = request.disabledRules === undefined ? await inheritedRules(deps.db, caseId) : undefined;
    const disabledRules = [...(request.disabledRules ?? inherited?.disabledRules ?? [])].sort();
    const { bundle, report, bundleId } = await buildAssembly(deps, caseId, { ...request, disabledRules }, phases);
    // Read before the store consumes the bundle (its entries are released as they are written).
    const entries = bundle.entry?.length ?? 0;
    const hasImaging = bundleHasImaging(bundle);
    let version: number;
    try {
      version = await insertBundleVersion(
        deps.db,
        {
          caseId, bundleId, bundle, report, options: { disabledRules }, trigger: request.trigger, readSeq, consumeBundle: true, ...(inherited ? { inheritedRules: inherited } : {}),
        },
        async (tx, stored) => {
          await announceRecordsUpdated(tx, caseId, stored, request.trigger);
          if (request.requestedBy) await recordRebuild(tx, caseId, stored, disabledRules, request.requestedBy);
        },
      );
    } catch (err) {
      if (!(err instanceof StaleAssemblyError)) throw err;
      if (read >= MAX_READS) {
        throw conflict(`The case record was assembled again by other work ${read} times while this assembly ran (now version ${err.newerVersion}); try again.`);
      }
      logger.info('case assembly read again: a later read was stored first', { caseId, version: err.newerVersion, attempt: read });
      continue;
    }
    phases.lap('store');
    // Imaging in the case: the quote offers radiology review (idempotent; the fee only after approval).
    if (hasImaging) await offerRadiologyReview(deps.db, caseId, 'bundle');
    logger.info('case assembled', {
      caseId,
      version,
      resources: entries,
      counts: { merged: report.totals.merged, leftOut: report.totals.leftOut },
      durationMs: phases.totalMs(),
      ...(read > 1 ? { attempt: read } : {}),
    });
    return { version, bundleId, report, entries, timings: phases.laps };
  }
}
