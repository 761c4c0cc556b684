/**
 * Provenance of a case bundle: where every resource came from, and every merge.
 *
 * Per source (one Provenance covering its pulls):
 * - `target`: every bundle resource holding data from the source — its own resources and
 *   the survivors its duplicates were merged into;
 * - `recorded`: the source's `lastFetchedAt` (else the assembly timestamp);
 * - `activity`: ISO 21089 `receive`;
 * - `agent`: the source as `transmitter` (US Core participant type; `who.display` = the
 *   care team's name: the source Organization is not a bundle entry of its own), and the
 *   service Device as `assembler`;
 * - `entity` (role `source`): the source's FHIR base URL as a logical reference
 *   (`what.identifier` system `urn:ietf:rfc:3986`, value = base URL), then each record
 *   pull (`what.identifier` system {@link PULL_SYSTEM}, value = pull id).
 * Per merge (one Provenance per MergeRecord):
 * - `target`: the survivor; `recorded`: the assembly timestamp;
 * - `activity`: ISO 21089 `merge`; `policy`: the dedupe rule as a URI ({@link RULE_POLICY_BASE});
 * - `agent`: the service Device as `assembler`;
 * - `entity` (role `source`) for each raw resource folded into the survivor, the
 *   survivor's own first: `what.identifier` system `urn:ietf:rfc:3986`, value =
 *   `[base]/[type]/[id]` at its source (the merged-away resources are not in the bundle,
 *   so no `urn:uuid` reference), `what.type`, and a display naming the source. So a merge
 *   Provenance names every source of the merged fact.
 * v3-DataOperation has no merge code; ISO 21089 lifecycle events (used by R5 Provenance and
 * AuditEvent) have `merge` and `receive`; R4's activity binding is extensible.
 * @see https://hl7.org/fhir/R4/provenance.html
 * @see https://terminology.hl7.org/CodeSystem-iso-21089-lifecycle.html
 * @see https://hl7.org/fhir/us/core/CodeSystem-us-core-provenance-participant-type.html
 * @see https://hl7.org/fhir/R4/codesystem-provenance-participant-type.html
 * @packageDocumentation
 */
import type { Device, Provenance, ProvenanceEntity, Reference } from 'fhir/r4';
import { uuidV5 } from '../cases/fhir-ids';
import type { BundleEntryInput } from './bundle';
import { escapeXml, SERVICE_NAME, serviceDevice } from './composition';
import type { AssemblyOptions, MergeRecord, NormalizedResource, SourceInfo } from './types';
import { XHTML_NAMESPACE } from './xhtml-allow-list';

/** Identifier system of record pulls (value: the pull id). */
export const PULL_SYSTEM = 'https://second-opinion.example.org/fhir/sid/record-pull';
/** Base of the dedupe rule URIs in `Provenance.policy` (+ rule name). */
export const RULE_POLICY_BASE = 'https://second-opinion.example.org/fhir/dedupe-rule/';
const URI = 'urn:ietf:rfc:3986';
const ISO_21089 = 'http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle';

const TRANSMITTER = {
  coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type', code: 'transmitter', display: 'Transmitter' }],
};
const ASSEMBLER = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'assembler', display: 'Assembler' }],
};

/** Input of {@link buildProvenances}. */
export interface ProvenanceInput {
  /** The bundle's resources (after de-duplication). */
  readonly resources: readonly NormalizedResource[];
  readonly merges: readonly MergeRecord[];
  readonly sources: readonly SourceInfo[];
  readonly options: AssemblyOptions;
  /** The assembling service; defaults to {@link serviceDevice} (the Composition's author). */
  readonly assembler?: BundleEntryInput<Device>;
}

/** A raw key split back into its parts (`sourceId|type|remoteId`; the source id may contain `|`). */
export function parseRawKey(key: string): { sourceId: string; resourceType: string; remoteId: string } {
  const last = key.lastIndexOf('|');
  const middle = key.lastIndexOf('|', last - 1);
  return { sourceId: key.slice(0, middle), resourceType: key.slice(middle + 1, last), remoteId: key.slice(last + 1) };
}

const trimSlash = (url: string): string => url.replace(/\/+$/, '');
const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function assemblerAgent(device: BundleEntryInput<Device>): Provenance['agent'][number] {
  return { type: ASSEMBLER, who: { reference: device.fullUrl, display: SERVICE_NAME } };
}

function sourceProvenance(source: SourceInfo, targets: readonly string[], input: ProvenanceInput, device: BundleEntryInput<Device>): BundleEntryInput<Provenance> {
  const id = uuidV5(`assembly/provenance/source/${source.sourceId}|${trimSlash(source.baseUrl)}`);
  const pulls = [...source.pullIds];
  const entity: ProvenanceEntity[] = [
    { role: 'source', what: { identifier: { system: URI, value: trimSlash(source.baseUrl) }, display: `${source.name} FHIR endpoint` } },
    ...pulls.map((p): ProvenanceEntity => ({ role: 'source', what: { identifier: { system: PULL_SYSTEM, value: p }, display: `Record pull ${p}` } })),
  ];
  const text = `Received from ${source.name} (${trimSlash(source.baseUrl)})${pulls.length > 0 ? ` in pull${pulls.length > 1 ? 's' : ''} ${pulls.join(', ')}` : ''}: ${targets.length} resource${targets.length === 1 ? '' : 's'} of this bundle.`;
  return {
    fullUrl: `urn:uuid:${id}`,
    resource: {
      resourceType: 'Provenance',
      id,
      text: { status: 'generated', div: `<div xmlns="${XHTML_NAMESPACE}"><p>${escapeXml(text)}</p></div>` },
      target: targets.map((reference): Reference => ({ reference })),
      recorded: source.lastFetchedAt ?? input.options.timestamp,
      activity: { coding: [{ system: ISO_21089, code: 'receive', display: 'Receive/Retain Record Lifecycle Event' }] },
      agent: [{ type: TRANSMITTER, who: { display: source.name } }, assemblerAgent(device)],
      entity,
    },
  };
}

function rawEntity(key: string, sources: ReadonlyMap<string, SourceInfo>): ProvenanceEntity {
  const { sourceId, resourceType, remoteId } = parseRawKey(key);
  const source = sources.get(sourceId);
  const local = `${resourceType}/${remoteId}`;
  const what: Reference = source
    ? { identifier: { system: URI, value: `${trimSlash(source.baseUrl)}/${local}` }, type: resourceType, display: `${local} at ${source.name}` }
    : { type: resourceType, display: `${local} at source ${sourceId}` };
  return { role: 'source', what };
}

function mergeProvenance(m: MergeRecord, sources: ReadonlyMap<string, SourceInfo>, input: ProvenanceInput, device: BundleEntryInput<Device>): BundleEntryInput<Provenance> {
  const id = uuidV5(`assembly/provenance/merge/${m.survivorKey}|${m.rule}`);
  const keys = [m.survivorKey, ...m.mergedKeys];
  const names = [...new Set(keys.map((k) => sources.get(parseRawKey(k).sourceId)?.name ?? parseRawKey(k).sourceId))];
  const text = `${keys.length} records of the same ${parseRawKey(m.survivorKey).resourceType} merged by rule ${m.rule}, from ${names.join(' and ')}.`;
  return {
    fullUrl: `urn:uuid:${id}`,
    resource: {
      resourceType: 'Provenance',
      id,
      text: { status: 'generated', div: `<div xmlns="${XHTML_NAMESPACE}"><p>${escapeXml(text)}</p></div>` },
      target: [{ reference: m.survivor }],
      recorded: input.options.timestamp,
      policy: [`${RULE_POLICY_BASE}${m.rule}`],
      activity: { coding: [{ system: ISO_21089, code: 'merge', display: 'Merge Record Lifecycle Event' }] },
      agent: [assemblerAgent(device)],
      entity: keys.map((k) => rawEntity(k, sources)),
    },
  };
}

/**
 * One Provenance per source (that has resources in the bundle) and one per merge, sources
 * first (by sourceId), then merges (by survivor). Pure and deterministic.
 */
export function buildProvenances(input: ProvenanceInput): BundleEntryInput<Provenance>[] {
  const device = input.assembler ?? serviceDevice();
  const sources = new Map(input.sources.map((s) => [s.sourceId, s]));
  const targets = new Map<string, Set<string>>(input.sources.map((s) => [s.sourceId, new Set<string>()]));
  for (const r of input.resources) targets.get(r.sourceId)?.add(r.fullUrl);
  for (const m of input.merges) {
    for (const k of m.mergedKeys) targets.get(parseRawKey(k).sourceId)?.add(m.survivor);
  }
  const out: BundleEntryInput<Provenance>[] = [];
  for (const s of [...input.sources].sort((a, b) => byString(a.sourceId, b.sourceId))) {
    const t = [...(targets.get(s.sourceId) ?? [])].sort(byString);
    if (t.length > 0) out.push(sourceProvenance(s, t, input, device));
  }
  for (const m of [...input.merges].sort((a, b) => byString(a.survivor, b.survivor))) out.push(mergeProvenance(m, sources, input, device));
  return out;
}
