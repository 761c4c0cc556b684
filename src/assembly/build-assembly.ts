/**
 * The CPU part of a case assembly, pure (no database, no clock, no randomness of its own): the raw
 * resources read from the raw store in, the document Bundle's JSON text out. normalize → fill
 * attachment hashes → de-duplicate → Provenance → Composition → document Bundle → its text in parts.
 *
 * It runs in the assembly thread (`assembly-thread.ts`), so that seconds of CPU for a large case
 * hold neither the API's event loop nor the other jobs of the process; everything it takes and gives
 * is plain data (structured-cloneable).
 * @packageDocumentation
 */
import type { Intake } from '../cases/intake-schema';
import { buildDocumentBundle } from '../normalize/bundle';
import { casePatientFullUrl } from '../normalize/case-patient';
import { buildComposition } from '../normalize/composition';
import { dedupe } from '../normalize/dedupe';
import { normalize } from '../normalize/normalize';
import { buildProvenances } from '../normalize/provenance';
import type { TerminologyMappings } from '../normalize/terminology';
import type { AssemblyOptions, DedupeResult, RawInput, SourceInfo } from '../normalize/types';
import type { FetchedAttachment } from './assembly-input';
import { fillAttachmentHashes } from './attachment-hashes';
import { bundleJsonByteParts } from './bundle-json';
import { completenessReport, countPulled, type CompletenessReport } from './completeness';
import { PhaseTimer } from './phase-timer';
import { collectGarbage } from '../util/full-gc';
import { COLLECT_GARBAGE_FROM_RESOURCES } from './large-assembly-gc';

/** A raw resource as stored, its JSON not parsed yet (parsed where it is normalized). */
export interface RawText extends Omit<RawInput, 'resource'> {
  readonly resourceJson: string;
}

/** Everything one assembly derives from. */
export interface AssemblyJob {
  readonly caseId: string;
  readonly intake: Intake;
  readonly sources: readonly SourceInfo[];
  /** Resources built in code (family uploads), after the raw store's. */
  readonly built: readonly RawInput[];
  readonly attachments: readonly FetchedAttachment[];
  readonly mappings: TerminologyMappings;
  /** Dedupe rules switched off (sorted). */
  readonly disabledRules: readonly string[];
  readonly bundleId: string;
  readonly timestamp: string;
}

/** What an assembly built tells before its text is written. */
export interface BuiltSummary {
  readonly report: CompletenessReport;
  readonly entries: number;
  /** The bundle holds an ImagingStudy (the quote then offers radiology review). */
  readonly hasImaging: boolean;
  /** Wall time per phase (ms): normalize, dedupe, compose. */
  readonly timings: Readonly<Record<string, number>>;
}

/** An assembly built, not stored yet. */
export interface BuiltAssembly extends BuiltSummary {
  /**
   * The Bundle's JSON text as UTF-8 in parts (`bundleJsonByteParts`), serialised as they are taken:
   * concatenated, exactly `JSON.stringify(bundle)`. Each part owns its ArrayBuffer (to transfer). The
   * bundle is this assembly's own: each entry is let go once written.
   */
  readonly parts: Generator<Uint8Array, void, undefined>;
}

/** Parses raw texts into objects owned by the assembly (normalize rewrites them in place), appended to `into`. */
export function parseRawTexts(texts: readonly RawText[], into: RawInput[]): void {
  for (const { resourceJson, ...rest } of texts) into.push({ ...rest, resource: JSON.parse(resourceJson) as Record<string, unknown> });
}

/**
 * Appends the resources built in code to the raw store's. They may share sub-objects: a JSON round trip
 * makes each its own. (Not structuredClone: under jest's vm contexts it returns objects of another
 * realm, which the plain-JSON check of normalize refuses.)
 */
function withBuilt(job: AssemblyJob, raw: RawInput[]): RawInput[] {
  for (const r of job.built) raw.push({ ...r, resource: JSON.parse(JSON.stringify(r.resource)) as Record<string, unknown> });
  return raw;
}

/**
 * Parse → normalize → fill attachment hashes → de-duplicate, and the completeness report of both. Its
 * own function so that the raw wrappers and the normalized set (the duplicates dedupe folded away
 * among it) are garbage once it returns, before the Composition and Bundle are built.
 */
function normalizeAndDedupe(job: AssemblyJob, owned: RawInput[], phases: PhaseTimer): { deduped: DedupeResult; report: CompletenessReport } {
  const raw = withBuilt(job, owned);
  const pulled = countPulled(raw);
  const normalized = normalize({ caseId: job.caseId, intake: job.intake, sources: job.sources, raw, mappings: job.mappings, consumeRaw: true });
  // Drop the raw wrappers (and the superseded versions only they still hold).
  raw.length = 0;
  phases.lap('normalize');
  fillAttachmentHashes(normalized.resources, job.attachments);
  const deduped = dedupe(normalized.resources, { disabledRules: job.disabledRules });
  const report = completenessReport(job.sources, pulled, normalized, deduped, job.attachments);
  phases.lap('dedupe');
  return { deduped, report };
}

/**
 * Builds the case's document Bundle from `job` and the raw store's resources (`raw`, parsed by
 * {@link parseRawTexts}: this build's own, normalized in place and emptied), and serialises it. See
 * the module comment.
 */
export function buildAssembly(job: AssemblyJob, raw: RawInput[]): BuiltAssembly {
  const phases = new PhaseTimer();
  // A large build collects its garbage at its two phase boundaries: after de-duplication (the raw
  // wrappers and the merged-away duplicates) and before its text is written (the normalized set's
  // leftovers and the Composition's work strings). This lowered the peak RSS of the 50,000-resource
  // bench:assemble case by 60–100 MB, for ~0.25 s per collection that fewer scavenges of a smaller
  // heap mostly give back.
  const large = raw.length + job.built.length >= COLLECT_GARBAGE_FROM_RESOURCES;
  const { deduped, report } = normalizeAndDedupe(job, raw, phases);
  if (large) collectGarbage();
  const options: AssemblyOptions = {
    bundleId: job.bundleId,
    timestamp: job.timestamp,
    ...(job.disabledRules.length > 0 ? { disabledRules: job.disabledRules } : {}),
  };
  // A removed source has nothing in the bundle: its Provenance and its name in the narrative go too.
  const sources = job.sources.filter((s) => s.removedReason === undefined);
  const provenances = buildProvenances({ resources: deduped.resources, merges: deduped.merges, sources, options });
  const composition = buildComposition({
    subject: casePatientFullUrl(job.caseId),
    resources: deduped.resources,
    options,
    story: { diagnosis: job.intake.diagnosis.text, history: job.intake.history, reason: job.intake.reason, questions: job.intake.questions },
    sources,
    merges: deduped.merges,
  });
  const bundle = buildDocumentBundle({ composition, resources: deduped.resources, provenances, options });
  const entries = bundle.entry ?? [];
  const hasImaging = entries.some((e) => e.resource?.resourceType === 'ImagingStudy');
  phases.lap('compose');
  if (large) collectGarbage();
  return { parts: bundleJsonByteParts(bundle, undefined, { releaseEntries: true }), report, entries: entries.length, hasImaging, timings: phases.laps };
}
