/**
 * Clustering by blocking keys: near-linear duplicate detection.
 *
 * Each item gives blocking keys (e.g. `LOINC code # instant`); items are bucketed by key
 * and an item is compared only with the representatives already in its buckets, so the
 * cost is O(n × keys × representatives-per-bucket), which stays O(n) for real data
 * (buckets hold a handful of items). A union-find joins matches found through different
 * keys (an Observation carrying two LOINC codings sits in two buckets).
 * @packageDocumentation
 */

/** How a rule finds duplicates among `n` items of one resource type. */
export interface BlockingSpec {
  /** Blocking keys of item `i`: two duplicates share at least one. No keys: never merged. */
  readonly keys: (i: number) => readonly string[];
  /** Whether items `a` and `b` (sharing a key) are the same fact. Defaults to true. */
  readonly same?: (a: number, b: number) => boolean;
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

class UnionFind {
  private readonly parent: Int32Array;

  constructor(n: number) {
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

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // Smaller index as root keeps groups deterministic.
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
  }
}

/** Groups (≥ 2 items, ascending indexes, ordered by first index) of items that are the same fact. */
export function clusterByKeys(n: number, spec: BlockingSpec): number[][] {
  const uf = new UnionFind(n);
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
      for (let r = 0; r < reps.length && match < 0; r++) {
        const rep = reps[r] as number;
        if (!same || uf.find(rep) === uf.find(i) || same(rep, i)) match = rep;
      }
      if (match >= 0) {
        uf.union(match, i);
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
