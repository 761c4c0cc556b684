/**
 * Content identity of documents and reports, shared by the DocumentReference and
 * DiagnosticReport rules: tiered keys — attachment hash, then URL, then identifier.
 *
 * Two resources are the same content when:
 * - both have content hashes: they have the same SET of attachments, each read by its hash (else
 *   its URL). One shared attachment is not enough: a CBC and a lipid report each with its own PDF
 *   plus the same boilerplate PDF share a hash, and merged, the survivor keeps only its own
 *   attachments (`presentedForm` and `content` are not unioned), so the other report's PDF and
 *   conclusion would vanish. Equal sets are the safe rule: nothing of either is lost, whichever
 *   survives (a subset would lose the larger side's extra attachment when the smaller survives);
 *   the same report sent with an extra rendering by one source stays two (both shown). Different
 *   bytes are different documents, whatever their identifiers say;
 * - else both have attachment URLs: the same set of attachments, each read by its URL (else its
 *   hash), for the same reason;
 * - else they share a business identifier (system|value), make the same claim
 *   ({@link ContentIdentity.claim}: a report's status and conclusion) and, where given, share a
 *   code ({@link ContentIdentity.codes}: a report's code after mapping): an identifier names the
 *   order or accession, not what was said under it, so an `amended` report and the `final` one it
 *   corrects share it while saying different things, and one accession may cover a CBC and a CMP
 *   drawn together (merged, the code would become CBC + CMP and one report would vanish).
 * What identical bytes do not settle (a report's structured status and conclusion: a
 * `preliminary` and a `final` report may carry the same PDF) is the rule's own cluster state,
 * compared on every tier (see `diagnostic-report.ts`).
 * A hash is `Attachment.hash` (the integrator fills it from the blob store for URL
 * attachments), else the SHA-1 of inline `data`. An attachment with neither hash nor URL
 * carries no content and gives no key. A malformed content list (an element
 * without its attachment, which R4 requires) gives no identity: the resource is never
 * merged (its survivor would keep only its own, broken, content).
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
 * @see https://hl7.org/fhir/R4/diagnosticreport-definitions.html#DiagnosticReport.presentedForm
 * @packageDocumentation
 */
import type { Attachment, Identifier } from 'fhir/r4';
import type { BlockingSpec } from './cluster';
import { attachmentHash, attachmentUrlKey, identifierKeys, intersects, isAttachment } from './keys';

/** The identity of one resource's content. */
export interface ContentIdentity {
  /** An attachment has a content hash (the hash tier decides when both resources have one). */
  readonly hasHash: boolean;
  /** An attachment has a URL (the URL tier decides when both have one and not both have hashes). */
  readonly hasUrl: boolean;
  /** Each attachment as the hash tier reads it: `h:` + its hash, else `u:` + its URL. */
  readonly byHash: ReadonlySet<string>;
  /** Each attachment as the URL tier reads it: `u:` + its URL, else `h:` + its hash. */
  readonly byUrl: ReadonlySet<string>;
  readonly identifiers: ReadonlySet<string>;
  /**
   * What the resource states that a shared identifier does not vouch for (a DiagnosticReport's
   * status and conclusion), compared only when the identifier decides; undefined: nothing.
   */
  readonly claim?: string | undefined;
  /**
   * What the resource is (a DiagnosticReport's code: `system|code` of its codings after
   * mapping, else its text): an identifier-only match must share one. Undefined: not compared
   * (a DocumentReference's identifier names the document itself); empty: never matched by identifier.
   */
  readonly codes?: ReadonlySet<string> | undefined;
}

const NONE: ReadonlySet<string> = new Set();
const EMPTY: ContentIdentity = { hasHash: false, hasUrl: false, byHash: NONE, byUrl: NONE, identifiers: NONE };

/**
 * Identity from attachments and identifiers (with the `claim` an identifier-only match must
 * share, and the `codes` it must share one of); `excluded` (e.g. entered-in-error) or a
 * missing or malformed attachment gives none.
 */
export function contentIdentity(
  attachments: readonly (Attachment | undefined)[], identifiers: readonly Identifier[] | undefined, sourceId: string, excluded = false, claim?: string,
  codes?: ReadonlySet<string>,
): ContentIdentity {
  if (excluded || !attachments.every(isAttachment)) return EMPTY;
  let hasHash = false;
  let hasUrl = false;
  const byHash = new Set<string>();
  const byUrl = new Set<string>();
  for (const a of attachments) {
    const h = attachmentHash(a);
    const u = attachmentUrlKey(a, sourceId);
    hasHash ||= h !== undefined && h !== '';
    hasUrl ||= u !== undefined && u !== '';
    const hk = h ? `h:${h}` : u ? `u:${u}` : undefined;
    const uk = u ? `u:${u}` : h ? `h:${h}` : undefined;
    if (hk) byHash.add(hk);
    if (uk) byUrl.add(uk);
  }
  const ids = identifierKeys(identifiers);
  return { hasHash, hasUrl, byHash, byUrl, identifiers: ids.length > 0 ? new Set(ids) : NONE, claim, codes };
}

/** Whether two sets hold the same elements. */
function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

/** A set's elements as one blocking key (sorted: order aside). */
function setKey(s: ReadonlySet<string>): string {
  return [...s].sort().join('\u0000');
}

/** Whether the identifier tier's code condition holds (no codes given: not compared). */
function sameCode(a: ContentIdentity, b: ContentIdentity): boolean {
  if (a.codes === undefined && b.codes === undefined) return true;
  return a.codes !== undefined && b.codes !== undefined && intersects(a.codes, b.codes);
}

/** Whether the identifier tier decides between two identities (neither both hashed nor both with URLs). */
function decidedByIdentifier(a: ContentIdentity, b: ContentIdentity): boolean {
  return !(a.hasHash && b.hasHash) && !(a.hasUrl && b.hasUrl);
}

/** Whether two identities name the same content (tiered, see module comment). */
export function sameContent(a: ContentIdentity, b: ContentIdentity): boolean {
  if (a.hasHash && b.hasHash) return sameSet(a.byHash, b.byHash);
  if (a.hasUrl && b.hasUrl) return sameSet(a.byUrl, b.byUrl);
  return a.claim === b.claim && intersects(a.identifiers, b.identifiers) && sameCode(a, b);
}

/**
 * Blocking over identities: a bucket per attachment set (as each tier reads it) and per
 * identifier; {@link sameContent} decides, and a cluster holding a member matchable by identifier
 * only holds one claim ({@link BlockingSpec.claim}: report A matches B by accession and C by hash;
 * B and C differ).
 */
export function contentBlocking(ids: readonly ContentIdentity[]): BlockingSpec {
  const keys = ids.map((id) => [
    ...(id.hasHash ? [`h:${setKey(id.byHash)}`] : []),
    ...(id.hasUrl ? [`u:${setKey(id.byUrl)}`] : []),
    ...[...id.identifiers].map((i) => `i:${i}`),
  ]);
  return {
    keys: (i) => keys[i] ?? [],
    same: (a, b) => {
      const ia = ids[a];
      const ib = ids[b];
      return ia !== undefined && ib !== undefined && sameContent(ia, ib);
    },
    claim: {
      of: (i) => ids[i]?.claim,
      binds: (a, b) => {
        const ia = ids[a];
        const ib = ids[b];
        return ia !== undefined && ib !== undefined && decidedByIdentifier(ia, ib);
      },
    },
  };
}
