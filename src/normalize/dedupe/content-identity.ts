/**
 * Content identity of documents and reports, shared by the DocumentReference and
 * DiagnosticReport rules: tiered keys — attachment hash, then URL, then identifier.
 *
 * Two resources are the same content when:
 * - both have content hashes: they share one (different bytes are different documents,
 *   whatever their identifiers say);
 * - else both have attachment URLs: they share one;
 * - else they share a business identifier (system|value) and make the same claim
 *   ({@link ContentIdentity.claim}: a report's status and conclusion): an identifier names the
 *   order or accession, not what was said under it, so an `amended` report and the `final` one
 *   it corrects share it while saying different things; merged, one would disappear.
 * A hash is `Attachment.hash` (the integrator fills it from the blob store for URL
 * attachments), else the SHA-1 of inline `data`. A malformed content list (an element
 * without its attachment, which R4 requires) gives no identity: the resource is never
 * merged (its survivor would keep only its own, broken, content).
 * @see https://hl7.org/fhir/R4/datatypes.html#Attachment
 * @packageDocumentation
 */
import type { Attachment, Identifier } from 'fhir/r4';
import type { BlockingSpec } from './cluster';
import { attachmentHash, attachmentUrlKey, identifierKeys, intersects, isAttachment } from './keys';

/** The identity of one resource's content. */
export interface ContentIdentity {
  readonly hashes: ReadonlySet<string>;
  readonly urls: ReadonlySet<string>;
  readonly identifiers: ReadonlySet<string>;
  /**
   * What the resource states that a shared identifier does not vouch for (a DiagnosticReport's
   * status and conclusion), compared only when the identifier decides; undefined: nothing.
   */
  readonly claim?: string | undefined;
}

const NONE: ReadonlySet<string> = new Set();
const EMPTY: ContentIdentity = { hashes: NONE, urls: NONE, identifiers: NONE };

/**
 * Identity from attachments and identifiers (and the `claim` an identifier-only match must
 * share); `excluded` (e.g. entered-in-error) or a missing or malformed attachment gives none.
 */
export function contentIdentity(
  attachments: readonly (Attachment | undefined)[], identifiers: readonly Identifier[] | undefined, sourceId: string, excluded = false, claim?: string,
): ContentIdentity {
  if (excluded || !attachments.every(isAttachment)) return EMPTY;
  let hashes = NONE;
  let urls = NONE;
  for (const a of attachments) {
    const h = attachmentHash(a);
    if (h) hashes = new Set([...hashes, h]);
    const u = attachmentUrlKey(a, sourceId);
    if (u) urls = new Set([...urls, u]);
  }
  const ids = identifierKeys(identifiers);
  return { hashes, urls, identifiers: ids.length > 0 ? new Set(ids) : NONE, claim };
}

/** Whether the identifier tier decides between two identities (neither both hashed nor both with URLs). */
function decidedByIdentifier(a: ContentIdentity, b: ContentIdentity): boolean {
  return !(a.hashes.size > 0 && b.hashes.size > 0) && !(a.urls.size > 0 && b.urls.size > 0);
}

/** Whether two identities name the same content (tiered, see module comment). */
export function sameContent(a: ContentIdentity, b: ContentIdentity): boolean {
  if (a.hashes.size > 0 && b.hashes.size > 0) return intersects(a.hashes, b.hashes);
  if (a.urls.size > 0 && b.urls.size > 0) return intersects(a.urls, b.urls);
  return a.claim === b.claim && intersects(a.identifiers, b.identifiers);
}

/**
 * Blocking over identities: a bucket per hash, URL and identifier; {@link sameContent} decides,
 * and a cluster holding a member matchable by identifier only holds one claim
 * ({@link BlockingSpec.claim}: report A matches B by accession and C by hash; B and C differ).
 */
export function contentBlocking(ids: readonly ContentIdentity[]): BlockingSpec {
  const keys = ids.map((id) => [
    ...[...id.hashes].map((h) => `h:${h}`),
    ...[...id.urls].map((u) => `u:${u}`),
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
