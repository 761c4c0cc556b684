/**
 * Clustering by blocking keys: near-linear duplicate detection.
 *
 * Each item gives blocking keys (e.g. `LOINC code # instant`); items are bucketed by key
 * and an item is compared only with the representatives already in its buckets, so the
 * cost is O(n × keys × representatives-per-bucket), which stays O(n) for real data
 * (buckets hold a handful of items). A union-find joins matches found through different
 * keys (an Observation carrying two LOINC codings sits in two buckets).
 *
 * De-duplication is across sources: two records of one source are two facts that source
 * recorded (a stopped and an active order of the same drug on the same day), never copies
 * of each other. Given each item's source, the union-find refuses a union whose two groups
 * both hold a record of the same source, so no cluster ever holds two records of one
 * source, not even transitively (a1 ~ b ~ a2 keeps a2 apart); the refused item stays a
 * representative of its bucket, so a record of a third source may still meet it. The same
 * group-level check keeps apart items whose {@link BlockingSpec.state}s differ, in any of the
 * state's dimensions (a Condition's body site, clinical status and verification status). A
 * {@link BlockingSpec.claim} guards transitive joins where a match was decided by a weak key:
 * such a group holds one claim (see {@link ClaimSpec}).
 * @packageDocumentation
 */

/** How a rule finds duplicates among `n` items of one resource type. */
export interface BlockingSpec {
  /** Blocking keys of item `i`: two duplicates share at least one. No keys: never merged. */
  readonly keys: (i: number) => readonly string[];
  /** Whether items `a` and `b` (sharing a key) are the same fact. Defaults to true. */
  readonly same?: (a: number, b: number) => boolean;
  /**
   * A state of item `i` no group may contradict (an allergy's clinical status): a group never
   * holds two different states, not even through a member without one (which joins any
   * group). Several independent states are a list, one per dimension, compared position by
   * position (a Condition's body site and clinical status: a member stating only one of them
   * joins a group stating the other). Defaults to none.
   */
  readonly state?: (i: number) => ClusterState;
  /** Claims compared across a whole group where a weak key joined it (see {@link ClaimSpec}). Defaults to none. */
  readonly claim?: ClaimSpec;
}

/**
 * What an item claims (a DiagnosticReport's status and conclusion) and which matches vouch for
 * no more than that claim: a match by business identifier names the accession, not what was
 * said under it. `same` compares the two claims of such a match, but a group grows through
 * other keys too: report A matches B by accession (same claim) and C by another key, and B and C
 * would stand as one without ever being compared. So a group joined by a binding match, at any
 * time, never holds two claims. (Reports also keep status, conclusion and date as cluster state on
 * every tier, `reportState` in `diagnostic-report.ts`; the claim stays the stricter rule of an
 * accession-only match, where a missing conclusion differs from a present one.)
 */
export interface ClaimSpec {
  readonly of: (i: number) => string | undefined;
  /** Whether a match of `a` and `b` is decided by the weak key (binding their groups to one claim). */
  readonly binds: (a: number, b: number) => boolean;
}

/** The claims of a group and whether a binding match joined it. */
interface GroupClaims {
  readonly claims: ReadonlySet<string>;
  readonly bound: boolean;
}

const NO_CLAIMS: GroupClaims = { claims: new Set(), bound: false };

/** Whether joining two groups (through a binding match or not) keeps a bound group to one claim. */
function claimsCompatible(a: GroupClaims, b: GroupClaims, binds: boolean): boolean {
  if (!binds && !a.bound && !b.bound) return true;
  const all = new Set([...a.claims, ...b.claims]);
  return all.size <= 1;
}

/**
 * What an item states that its group may not contradict: one state, or one per dimension
 * (undefined where the item states nothing).
 */
export type ClusterState = string | undefined | readonly (string | undefined)[];

/** A {@link ClusterState} as one entry per dimension; undefined when it states nothing. */
function dimensionsOf(state: ClusterState): readonly (string | undefined)[] | undefined {
  if (state === undefined) return undefined;
  if (typeof state === 'string') return [state];
  return state.some((s) => s !== undefined) ? state : undefined;
}

/** Whether two states disagree in some dimension both state. */
function conflicting(a: readonly (string | undefined)[], b: readonly (string | undefined)[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    const x = a[k];
    const y = b[k];
    if (x !== undefined && y !== undefined && x !== y) return true;
  }
  return false;
}

/** Whether two items' states disagree in some dimension both state (they could never be one group). */
export function statesConflict(a: ClusterState, b: ClusterState): boolean {
  const da = dimensionsOf(a);
  const db = dimensionsOf(b);
  return da !== undefined && db !== undefined && conflicting(da, db);
}

/** Per dimension, what either states (`a` first: the caller checked they do not conflict). */
function joinedStates(a: readonly (string | undefined)[] | undefined, b: readonly (string | undefined)[] | undefined): readonly (string | undefined)[] | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out: (string | undefined)[] = [];
  for (let k = 0; k < Math.max(a.length, b.length); k++) out.push(a[k] ?? b[k]);
  return out;
}

/**
 * A {@link BlockingSpec} from one signature per item (computed once): blocking keys read from the
 * signature, and `same` comparing two signatures (an item without a signature never merges).
 */
export function signatureBlocking<S extends { readonly keys: readonly string[] }>(
  signatures: readonly (S | undefined)[],
  same: (a: S, b: S) => boolean,
): BlockingSpec {
  return {
    keys: (i) => signatures[i]?.keys ?? [],
    same: (a, b) => {
      const sa = signatures[a];
      const sb = signatures[b];
      return sa !== undefined && sb !== undefined && same(sa, sb);
    },
  };
}

/**
 * Bound on representatives compared per bucket: a degenerate bucket (thousands of
 * different values under one key) degrades to "no merge" instead of O(n²).
 */
export const MAX_REPRESENTATIVES_PER_BUCKET = 256;

/** Source of each item, as a small integer per distinct source. */
function sourceIndexes(n: number, sourceOf: (i: number) => string): Int32Array {
  const ids = new Map<string, number>();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = sourceOf(i);
    let id = ids.get(s);
    if (id === undefined) {
      id = ids.size;
      ids.set(s, id);
    }
    out[i] = id;
  }
  return out;
}

/**
 * Union-find over items; a union that would put two records of one source, or two
 * different states, in one group is refused ({@link UnionFind.canUnion}).
 */
class UnionFind {
  private readonly parent: Int32Array;
  /** Sources of each root's group, created at its first union (a singleton's is its own source). */
  private readonly groupSources = new Map<number, Set<number>>();
  /** State of each root's group that got one from a member other than the root. */
  private readonly groupState = new Map<number, readonly (string | undefined)[]>();
  /** Claims of each root's group once it has more than one member. */
  private readonly groupClaims = new Map<number, GroupClaims>();

  constructor(
    n: number,
    private readonly source: Int32Array,
    private readonly state: ((i: number) => ClusterState) | undefined,
    private readonly claim: ((i: number) => string | undefined) | undefined,
  ) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  find(i: number): number {
    let root = i;
    while (this.parent[root] !== root) root = this.parent[root] ?? root;
    let cur = i;
    while (this.parent[cur] !== root) {
      const next = this.parent[cur] ?? root;
      this.parent[cur] = root;
      cur = next;
    }
    return root;
  }

  /** Sources of a root's group (a root never joined is a singleton: its own source). */
  private sourcesOf(root: number): ReadonlySet<number> | number {
    return this.groupSources.get(root) ?? (this.source[root] as number);
  }

  private stateOf(root: number): readonly (string | undefined)[] | undefined {
    return this.groupState.get(root) ?? (this.state ? dimensionsOf(this.state(root)) : undefined);
  }

  private claimsOf(root: number): GroupClaims {
    const group = this.groupClaims.get(root);
    if (group !== undefined) return group;
    const own = this.claim?.(root);
    return own === undefined ? NO_CLAIMS : { claims: new Set([own]), bound: false };
  }

  /**
   * Whether `a` and `b` are in one group, or joining their groups keeps one record per source,
   * one state, and one claim in a group a binding match joins (`binds`: this match is one).
   */
  canUnion(a: number, b: number, binds = false): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return true;
    const ta = this.stateOf(ra);
    const tb = this.stateOf(rb);
    if (ta !== undefined && tb !== undefined && conflicting(ta, tb)) return false;
    if (this.claim !== undefined && !claimsCompatible(this.claimsOf(ra), this.claimsOf(rb), binds)) return false;
    const sa = this.sourcesOf(ra);
    const sb = this.sourcesOf(rb);
    if (typeof sa === 'number') return typeof sb === 'number' ? sa !== sb : !sb.has(sa);
    if (typeof sb === 'number') return !sa.has(sb);
    const [small, large] = sa.size <= sb.size ? [sa, sb] : [sb, sa];
    for (const s of small) if (large.has(s)) return false;
    return true;
  }

  /** Joins the groups of `a` and `b` (the caller checked {@link canUnion} with the same `binds`). */
  union(a: number, b: number, binds = false): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // Smaller index as root keeps groups deterministic.
    const [root, child] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[child] = root;
    const state = joinedStates(this.stateOf(root), this.stateOf(child));
    if (state !== undefined) this.groupState.set(root, state);
    this.groupState.delete(child);
    if (this.claim !== undefined) {
      const ca = this.claimsOf(root);
      const cb = this.claimsOf(child);
      this.groupClaims.set(root, { claims: new Set([...ca.claims, ...cb.claims]), bound: binds || ca.bound || cb.bound });
      this.groupClaims.delete(child);
    }
    const joined = new Set<number>();
    for (const g of [this.sourcesOf(root), this.sourcesOf(child)]) {
      if (typeof g === 'number') joined.add(g);
      else for (const s of g) joined.add(s);
    }
    this.groupSources.delete(child);
    this.groupSources.set(root, joined);
  }
}

/**
 * Groups (≥ 2 items, ascending indexes, ordered by first index) of items that are the same
 * fact. A group never holds two items of one source (`sourceOf`): such a pair is never
 * tested, and a match that would join two groups sharing a source (or holding different
 * states) is skipped (the item then tries the bucket's other representatives, else becomes one).
 */
export function clusterByKeys(n: number, spec: BlockingSpec, sourceOf: (i: number) => string): number[][] {
  const uf = new UnionFind(n, sourceIndexes(n, sourceOf), spec.state, spec.claim?.of);
  const claim = spec.claim;
  // A bucket holds its first representative as a number; an array only once a second one arrives.
  const buckets = new Map<string, number | number[]>();
  const joined: number[] = [];
  const same = spec.same;
  for (let i = 0; i < n; i++) {
    const keys = spec.keys(i);
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as string;
      const bucket = buckets.get(key);
      if (bucket === undefined) {
        buckets.set(key, i);
        continue;
      }
      const reps = typeof bucket === 'number' ? [bucket] : bucket;
      let match = -1;
      let binds = false;
      for (let r = 0; r < reps.length && match < 0; r++) {
        const rep = reps[r] as number;
        if (uf.find(rep) === uf.find(i)) match = rep;
        else {
          binds = claim !== undefined && claim.binds(rep, i);
          if (uf.canUnion(rep, i, binds) && (!same || same(rep, i))) match = rep;
        }
      }
      if (match >= 0) {
        uf.union(match, i, binds);
        joined.push(match, i);
      } else if (reps.length < MAX_REPRESENTATIVES_PER_BUCKET) {
        reps.push(i);
        if (typeof bucket === 'number') buckets.set(key, reps);
      }
    }
  }
  if (joined.length === 0) return [];
  const groups = new Map<number, number[]>();
  for (const i of new Set(joined)) {
    const root = uf.find(i);
    const g = groups.get(root);
    if (g) g.push(i);
    else groups.set(root, [i]);
  }
  return [...groups.values()]
    .map((g) => g.sort((a, b) => a - b))
    .filter((g) => g.length > 1)
    .sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
}
