import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../db/database';
import { insertCaseEvent } from '../db/case-repository';
import { primaryRole, type Principal } from '../http/auth';
import { logger } from '../log';
import { DEDUPE_RULE_NAMES } from '../normalize/dedupe';
import type { TerminologyMappings } from '../normalize/terminology';
import { loadAssemblyInput } from './assembly-input';
import { latestDisabledRules, StaleAssemblyError, takeReadSeq, type InheritedRules } from './assembly-order';
import { processAssemblyThread, type AssemblyThread, type SendRaw } from './assembly-thread';
import type { AssemblyJob } from './build-assembly';
import { insertBundleVersion } from './bundle-repository';
import type { CompletenessReport } from './completeness';
import { PhaseTimer } from './phase-timer';
import { processAssemblyMemory, type AssemblyMemory } from './assembly-memory';
import { countRawResources } from './raw-resource-stream';
import { announceRecordsUpdated } from './records-updated';
import { conflict } from '../http/problem';
import { withUploads } from '../uploads/upload-resources';
import { offerRadiologyReviewIn } from '../cases/radiology-offer';
import type { PriceList } from '../cases/prices';

export interface AssembleDeps {
  readonly db: Database;
  readonly mappings: () => TerminologyMappings;
  readonly now?: () => Date;
  /** The heap budget assemblies share (default: the process's, {@link processAssemblyMemory}). */
  readonly assemblyMemory?: AssemblyMemory;
  /** Where the CPU part runs (default: the process's assembly thread, {@link processAssemblyThread}). */
  readonly assemblyThread?: AssemblyThread;
  /** The price list the service loaded at start: a radiology review offered on imaging is priced by it. */
  readonly domain?: { readonly prices: PriceList };
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
  /**
   * Wall time per phase (ms): read (the raw store; the thread parses meanwhile), build (until the
   * thread has the bundle), store (the thread serialising each part while the one before is stored);
   * and, inside build, the thread's normalize, dedupe and compose.
   */
  readonly timings: Readonly<Record<string, number>>;
}

/** What {@link assembleCase} reads: the raw store, the case's sources and uploads, as the thread's job. */
async function readJob(deps: AssembleDeps, caseId: string, disabledRules: readonly string[], bundleId: string, sendRaw: SendRaw): Promise<AssemblyJob> {
  // Family uploads join as one more source (origin family-upload).
  const input = await withUploads(deps.db, await loadAssemblyInput(deps.db, caseId, sendRaw));
  return {
    caseId,
    intake: input.intake,
    sources: input.sources,
    built: input.built,
    attachments: input.attachments,
    mappings: deps.mappings(),
    disabledRules,
    bundleId,
    timestamp: (deps.now ?? (() => new Date()))().toISOString(),
  };
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
    const bundleId = randomUUID();
    let offered = false;
    // Read, build in the assembly thread, store its text as the thread serialises it (assembly-thread.ts).
    const outcome = await (deps.assemblyThread ?? processAssemblyThread).build(
      async (sendRaw) => {
        const job = await readJob(deps, caseId, disabledRules, bundleId, sendRaw);
        phases.lap('read');
        return job;
      },
      async ({ parts, ...built }) => {
        phases.lap('build');
        try {
          const version = await insertBundleVersion(
            deps.db,
            { caseId, bundleId, parts, report: built.report, options: { disabledRules }, trigger: request.trigger, readSeq, ...(inherited ? { inheritedRules: inherited } : {}) },
            async (tx, stored) => {
              await announceRecordsUpdated(tx, caseId, stored, request.trigger);
              if (request.requestedBy) await recordRebuild(tx, caseId, stored, disabledRules, request.requestedBy);
              // Imaging in the case: the quote offers radiology review (idempotent; the fee only after
              // approval), committed with the version: a job run again after a crash finds the version
              // stored and assembles nothing, so an offer left for after the commit would be lost.
              if (built.hasImaging) offered = await offerRadiologyReviewIn(tx, caseId, 'bundle', deps.domain?.prices);
            },
          );
          return { version, built };
        } catch (err) {
          if (err instanceof StaleAssemblyError) return err;
          throw err;
        }
      },
    );
    if (outcome instanceof StaleAssemblyError) {
      if (read >= MAX_READS) {
        throw conflict(`The case record was assembled again by other work ${read} times while this assembly ran (now version ${outcome.newerVersion}); try again.`);
      }
      logger.info('case assembly read again: a later read was stored first', { caseId, version: outcome.newerVersion, attempt: read });
      continue;
    }
    const { version, built: { report, entries, timings } } = outcome;
    phases.lap('store');
    if (offered) logger.info('radiology review offered', { caseId, reason: 'bundle' });
    logger.info('case assembled', {
      caseId,
      version,
      resources: entries,
      counts: { merged: report.totals.merged, leftOut: report.totals.leftOut },
      durationMs: phases.totalMs(),
      ...(read > 1 ? { attempt: read } : {}),
    });
    return { version, bundleId, report, entries, timings: { ...phases.laps, ...timings } };
  }
}
