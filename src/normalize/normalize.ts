/**
 * The normalization step of case assembly: raw resources of every source in, bundle-ready resources
 * out (before de-duplication). Pure and deterministic: the same input gives a deeply equal result,
 * whatever the order of `raw` and `sources`.
 *
 * Order of work, and why:
 * 1. every raw input gets its deterministic fullUrl (`ids.ts`); one from an unknown or removed source,
 *    or of the Patient compartment and pulled for a patient the source no longer points at, is left
 *    out (a shared resource pulled for that patient waits for step 4);
 * 2. versions of one remote resource (same server, type and id) → the latest (`versions.ts`);
 * 3. the latest version passes the structure checks or is left out (`structure.ts`);
 * 4. per server, the child's Patient there; records about another patient are left out
 *    (`patient-scope.ts`; a subject it cannot place is kept, warned `subject-not-placed`), and so are
 *    shared resources pulled for a previous patient that no kept record points at; a reference index
 *    is built of the rest;
 * 5. per kept resource, ONE copying walk rewrites references (`references.ts`; in place instead when
 *    the caller hands the raw objects over, `consumeRaw`), then in place on the copy: new `id`,
 *    origin marks (`origin.ts`), narratives that may not be passed on replaced by a notice
 *    (`narrative-safety.ts`, warned `narrative-removed`), mapped codings (`terminology.ts`), units
 *    (`units.ts`);
 * 6. the case Patient from the intake, linked to each source Patient (`case-patient.ts`);
 * 7. output sorted: the case Patient first, then by (resourceType, fullUrl); left-outs, warnings and
 *    unmapped codes sorted too.
 *
 * Accounting invariant: every raw input is either one NormalizedResource (`key`) or one LeftOut.
 * @see https://hl7.org/fhir/R4/references.html
 * @see https://hl7.org/fhir/R4/bundle.html#references
 * @packageDocumentation
 */
import type { FhirResource } from 'fhir/r4';
import type { Intake } from '../cases/intake-schema';
import { belongsToAPatient } from '../fhir/patient-compartment';
import { buildCasePatient, casePatientFullUrl, type SourcePatientLink } from './case-patient';
import { importedFullUrl, normalizeBaseUrl, URN_UUID_PREFIX } from './ids';
import { replaceUnsafeNarratives } from './narrative-safety';
import { applyOrigin, metaSourceOf } from './origin';
import {
  buildReferenceIndex,
  copyRewritingReferences,
  metaVersionIdOf,
  NotFhirJsonError,
  pruneReferences,
  rewriteReferencesInPlace,
  sourceHooks,
  type ReferenceTarget,
  type RewriteHooks,
  type SourceReferenceIndex,
} from './references';
import { childAtServer, patientScopeOf } from './patient-scope';
import { checkStructure } from './structure';
import { applyTerminology, TerminologyTally, type TerminologyMappings } from './terminology-apply';
import { rawKey, type AssemblyWarning, type LeftOut, type MatchCoding, type NormalizedResource, type NormalizeResult, type RawInput, type SourceInfo } from './types';
import { normalizeObservationUnits, type WithheldCodings } from './units';
import { selectLatestVersions } from './versions';

/** Input of {@link normalize}. */
export interface NormalizeInput {
  readonly caseId: string;
  readonly intake: Intake;
  readonly sources: readonly SourceInfo[];
  readonly raw: readonly RawInput[];
  readonly mappings: TerminologyMappings;
  /**
   * The caller hands the raw resource objects over (parsed for this assembly and not used again):
   * kept resources are then rewritten in place instead of deep-copied, which saves about 40% of the
   * CPU of this step (the copy and its garbage). The output is the same; `raw[i].resource` objects
   * become the output resources (and left-out ones may be partly rewritten). Only for objects
   * straight from `JSON.parse` / the database driver (no sub-object shared between resources).
   * Default `false`: the input is never changed.
   */
  readonly consumeRaw?: boolean;
}

/** A source, with what every resource of it shares. */
interface SourceContext {
  readonly source: SourceInfo;
  /** Normalized base URL: one reference index per server. */
  readonly base: string;
  readonly metaSource: string;
}

/** A raw input on its way; it is also the reference target of its index (no extra object). */
interface Candidate extends ReferenceTarget {
  readonly raw: RawInput;
  readonly ctx: SourceContext;
  readonly id: string;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function leftOutOf(raw: RawInput, reason: string): LeftOut {
  return { key: rawKey(raw), sourceId: raw.sourceId, resourceType: raw.resourceType, remoteId: raw.remoteId, versionId: raw.versionId, reason };
}

/** Collects the warnings of the resource being normalized; they count only if it makes it. */
class WarningCollector {
  key = '';
  readonly pending: AssemblyWarning[] = [];
  readonly warn = (code: string, message: string): void => {
    this.pending.push({ key: this.key, code, message });
  };

  start(key: string): void {
    this.key = key;
    this.pending.length = 0;
  }
}

/**
 * `Patient/<id>` of the child at a server: the sources' `remotePatientId`s, else the server's only
 * kept Patient. Several Patients and no `remotePatientId`: none (warned), references stay local.
 */
function childPatientIds(sources: readonly SourceInfo[], items: readonly Candidate[], warnings: AssemblyWarning[]): Set<string> {
  const ids = new Set<string>();
  for (const s of sources) if (s.remotePatientId) ids.add(`Patient/${s.remotePatientId}`);
  if (ids.size > 0) return ids;
  const patients = items.filter((c) => c.raw.resourceType === 'Patient');
  const names = sources.map((s) => s.sourceId).join(', ');
  if (patients.length === 1 && patients[0]) ids.add(`Patient/${patients[0].raw.remoteId}`);
  else if (patients.length > 1) {
    warnings.push({
      code: 'child-patient-ambiguous',
      message: `source ${names} has ${patients.length} Patients and no remotePatientId: references to them are not redirected to the case Patient`,
    });
  } else if (items.length > 0) {
    warnings.push({ code: 'child-patient-missing', message: `source ${names} has no Patient resource and no remotePatientId` });
  }
  return ids;
}

/**
 * A resource pulled for another patient than the source's current one: the case manager found the
 * first match wrong and chose another child there. Its raw rows stay; the bundle leaves out those of
 * the Patient compartment, and the shared ones no record of the current patient points at.
 */
function pulledForAnotherPatient(raw: RawInput, source: SourceInfo): boolean {
  return raw.pulledForPatient !== undefined && source.remotePatientId !== undefined && raw.pulledForPatient !== source.remotePatientId;
}

function pulledForAnotherPatientReason(raw: RawInput, source: SourceInfo): string {
  return `pulled for patient ${raw.pulledForPatient ?? ''} at this source, which is no longer the case's patient there (now ${source.remotePatientId ?? ''})`;
}

/**
 * Of the shared resources pulled for a previous patient (`shared`), those the other resources of the
 * server (`own`) point at, directly or through one another (a MedicationRequest's Medication, that
 * Medication's manufacturer Organization), resolved as the rewrite of step 5 resolves them. A raw row
 * is stored once per version, by whichever pull brought it first, so a Medication both children's
 * prescriptions name may carry the previous patient's pull: not about either child, it is kept while
 * the current patient's records point at it (https://hl7.org/fhir/R4/compartmentdefinition-patient.html).
 */
function sharedInUse(own: readonly Candidate[], shared: ReadonlySet<Candidate>, index: SourceReferenceIndex): Set<Candidate> {
  const sharedByFullUrl = new Map<string, Candidate>();
  const pending: Candidate[] = [];
  for (const c of own) {
    if (shared.has(c)) sharedByFullUrl.set(c.fullUrl, c);
    else pending.push(c);
  }
  const inUse = new Set<Candidate>();
  const reach = (fullUrl: string): void => {
    const target = sharedByFullUrl.get(fullUrl);
    if (target && !inUse.has(target)) {
      inUse.add(target);
      pending.push(target);
    }
  };
  const resolving = sourceHooks(index, () => undefined);
  const hooks: RewriteHooks = {
    resolve: (reference) => {
      const res = resolving.resolve(reference);
      if (res.status === 'resolved') reach(res.fullUrl);
      return res;
    },
    attachmentUrl: (url) => {
      const to = resolving.attachmentUrl(url);
      if (to !== undefined) reach(to);
      return to;
    },
    warn: () => undefined,
  };
  for (let c = pending.pop(); c !== undefined; c = pending.pop()) {
    try {
      copyRewritingReferences(c.resource, hooks);
    } catch (err) {
      if (!(err instanceof NotFhirJsonError)) throw err; // left out in step 5, with its reason
    }
  }
  return inUse;
}

/** Sorts by (resourceType, fullUrl), in place: grouped by type first (a handful), then by fullUrl. */
function sortResources(out: NormalizedResource[]): void {
  const byType = new Map<string, NormalizedResource[]>();
  for (const r of out) {
    const group = byType.get(r.resource.resourceType);
    if (group) group.push(r);
    else byType.set(r.resource.resourceType, [r]);
  }
  let i = 0;
  for (const type of [...byType.keys()].sort()) {
    const group = byType.get(type) ?? [];
    group.sort((a, b) => cmp(a.fullUrl, b.fullUrl));
    for (const r of group) out[i++] = r;
  }
}

/** Normalizes the raw resources of a case. See the module comment for the steps. */
export function normalize(input: NormalizeInput): NormalizeResult {
  const leftOut: LeftOut[] = [];
  const warnings: AssemblyWarning[] = [];
  const contexts = new Map<string, SourceContext>();
  for (const s of [...input.sources].sort((a, b) => cmp(a.sourceId, b.sourceId))) {
    if (!contexts.has(s.sourceId)) contexts.set(s.sourceId, { source: s, base: normalizeBaseUrl(s.baseUrl), metaSource: metaSourceOf(s) });
  }

  // 1. ids and fullUrls
  const candidates: Candidate[] = [];
  // Shared resources (outside the Patient compartment) pulled for a previous patient: kept in step 4 only if in use.
  const sharedOfPreviousPatient = new Set<Candidate>();
  for (const raw of input.raw) {
    const ctx = contexts.get(raw.sourceId);
    if (!ctx) leftOut.push(leftOutOf(raw, `source ${raw.sourceId} is not a source of this case`));
    else if (ctx.source.removedReason !== undefined) leftOut.push(leftOutOf(raw, `source removed from the case: ${ctx.source.removedReason}`));
    else if (!raw.resourceType || !raw.remoteId) leftOut.push(leftOutOf(raw, 'structure: stored without resource type or remote id'));
    else if (pulledForAnotherPatient(raw, ctx.source) && belongsToAPatient(raw.resourceType)) leftOut.push(leftOutOf(raw, pulledForAnotherPatientReason(raw, ctx.source)));
    else {
      const fullUrl = importedFullUrl(ctx.base, raw.resourceType, raw.remoteId);
      const candidate: Candidate = {
        raw,
        ctx,
        id: fullUrl.slice(URN_UUID_PREFIX.length),
        fullUrl,
        resourceType: raw.resourceType,
        remoteId: raw.remoteId,
        resource: raw.resource,
        // Read now: normalizing in place (consumeRaw) drops meta.versionId before later references are resolved.
        versionId: metaVersionIdOf(raw.resource),
        sourceFullUrl: raw.fullUrl,
      };
      candidates.push(candidate);
      if (pulledForAnotherPatient(raw, ctx.source)) sharedOfPreviousPatient.add(candidate);
    }
  }

  // 2. latest versions, 3. structure
  const { latest, superseded } = selectLatestVersions(candidates, (c) => c.fullUrl);
  for (const l of superseded) leftOut.push(l);
  const kept: Candidate[] = [];
  for (const c of latest) {
    const reason = checkStructure(c.raw);
    if (reason) leftOut.push(leftOutOf(c.raw, reason));
    else kept.push(c);
  }

  // 4. one reference index per server (a server registered as two sources is one id space)
  const caseUrl = casePatientFullUrl(input.caseId);
  const servers = new Map<string, { sources: SourceInfo[]; items: Candidate[] }>();
  for (const ctx of contexts.values()) {
    // A removed source keeps nothing, and its patient is not the child (the endpoint may be a source again).
    if (ctx.source.removedReason !== undefined) continue;
    const server = servers.get(ctx.base) ?? { sources: [], items: [] };
    server.sources.push(ctx.source);
    servers.set(ctx.base, server);
  }
  for (const c of kept) servers.get(c.ctx.base)?.items.push(c);
  const collector = new WarningCollector();
  const hooksByServer = new Map<string, RewriteHooks>();
  const childFullUrls = new Set<string>();
  // Records about another patient than the child (patient-scope.ts), and shared resources of a previous
  // patient's pull that nothing kept points at, are left out before the index is built.
  const leftOutAtServer = new Set<Candidate>();
  for (const [base, server] of servers) {
    const childIds = childPatientIds(server.sources, server.items, warnings);
    const child = childAtServer(base, childIds, server.items);
    const own: Candidate[] = [];
    for (const c of server.items) {
      const scope = patientScopeOf(c, child);
      if (scope.about === 'other') {
        leftOutAtServer.add(c);
        leftOut.push(leftOutOf(c.raw, `about another patient at this source (${scope.patient}), not the case's child`));
        continue;
      }
      own.push(c);
      if (scope.about === 'unplaced') {
        warnings.push({ key: rawKey(c.raw), code: 'subject-not-placed', message: `${scope.reason}: kept, as it is not clearly about another patient than the case's child` });
      }
    }
    for (const c of own) if (c.resourceType === 'Patient' && childIds.has(`Patient/${c.remoteId}`)) childFullUrls.add(c.fullUrl);
    const redirect = childIds.size > 0 ? { typeIds: childIds, to: caseUrl } : undefined;
    let index = buildReferenceIndex(base, own, redirect);
    if (sharedOfPreviousPatient.size > 0 && own.some((c) => sharedOfPreviousPatient.has(c))) {
      const inUse = sharedInUse(own, sharedOfPreviousPatient, index);
      const unused = own.filter((c) => sharedOfPreviousPatient.has(c) && !inUse.has(c));
      for (const c of unused) {
        leftOutAtServer.add(c);
        leftOut.push(leftOutOf(c.raw, pulledForAnotherPatientReason(c.raw, c.ctx.source)));
      }
      if (unused.length > 0) index = buildReferenceIndex(base, own.filter((c) => !leftOutAtServer.has(c)), redirect);
    }
    hooksByServer.set(base, sourceHooks(index, collector.warn));
  }

  // 5. transform each kept resource: one copying walk, then in place on the copy
  const tally = new TerminologyTally(input.mappings);
  const out: NormalizedResource[] = [];
  const failed = new Set<string>();
  const { warn } = collector;
  for (const c of kept) {
    if (leftOutAtServer.has(c)) continue;
    const key = rawKey(c.raw);
    collector.start(key);
    try {
      const hooks = hooksByServer.get(c.ctx.base);
      if (!hooks) throw new Error('no reference index for the source');
      const resource = input.consumeRaw ? rewriteReferencesInPlace(c.raw.resource, hooks) : copyRewritingReferences(c.resource, hooks);
      resource['id'] = c.id;
      applyOrigin(resource, c.ctx.metaSource, c.ctx.source.origin);
      replaceUnsafeNarratives(resource, c.raw, warn);
      applyTerminology(resource, c.ctx.source.sourceId, tally, warn);
      let matchCodings: MatchCoding[] | undefined;
      if (c.resourceType === 'Observation') {
        const withheld: WithheldCodings = { ofCode: [], count: 0 };
        normalizeObservationUnits(resource, input.mappings, warn, withheld);
        // Appended, then taken back (the value contradicts them): not in the bundle; those of the code still matched by.
        tally.mappedCodings -= withheld.count;
        if (withheld.ofCode.length > 0) matchCodings = withheld.ofCode;
      }
      out.push({
        key, fullUrl: c.fullUrl, resource: resource as unknown as FhirResource, sourceId: c.ctx.source.sourceId, origin: c.ctx.source.origin,
        ...(matchCodings ? { matchCodings } : {}),
      });
      for (const w of collector.pending) warnings.push(w);
    } catch (err) {
      failed.add(c.fullUrl);
      const message = err instanceof Error ? err.message : String(err);
      leftOut.push(leftOutOf(c.raw, err instanceof NotFhirJsonError ? `structure: ${message}` : `normalization failed: ${message}`));
    }
  }
  if (failed.size > 0) {
    for (const r of out) {
      pruneReferences(r.resource, (url) => !failed.has(url), (code, message) => void warnings.push({ key: r.key, code, message }));
    }
  }

  // 6. the case Patient, linked to the child's Patient at each source
  const links: SourcePatientLink[] = out
    .filter((r) => childFullUrls.has(r.fullUrl))
    .map((r) => ({ fullUrl: r.fullUrl, sourceName: contexts.get(r.sourceId)?.source.name ?? r.sourceId }));
  const casePatient = buildCasePatient(input.caseId, input.intake, links);

  // 7. deterministic order
  sortResources(out);
  leftOut.sort((a, b) => cmp(a.key, b.key) || cmp(a.versionId, b.versionId) || cmp(a.reason, b.reason));
  warnings.sort((a, b) => cmp(a.key ?? '', b.key ?? '') || cmp(a.code, b.code) || cmp(a.message, b.message));
  return {
    resources: [casePatient, ...out],
    casePatient: casePatient.resource,
    leftOut,
    warnings,
    unmappedCodes: tally.unmappedCodes(),
    mappedCodings: tally.mappedCodings,
  };
}
