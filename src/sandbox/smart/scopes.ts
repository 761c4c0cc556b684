/**
 * SMART system scopes, both syntaxes:
 * - v1: `system/Observation.read`, `system/*.write`, `system/*.*`
 * - v2: `system/Observation.rs`, `system/*.cruds` (letters in the order c, r, u, d, s)
 *
 * v1 `read` means read + search, `write` means create + update + delete. Scopes with v2 query
 * restrictions (`system/Observation.rs?category=laboratory`) are refused: this sandbox cannot
 * enforce them, and granting more than asked would be wrong.
 *
 * @see https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 * @see https://hl7.org/fhir/smart-app-launch/backend-services.html#scopes
 */

/** c = create, r = read, u = update, d = delete, s = search. */
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

const V2_ORDER = 'cruds';
const SCOPE_PATTERN = /^system\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]{1,5})$/;

export interface ResourceScope {
  /** The scope as written. */
  readonly text: string;
  readonly resourceType: string;
  readonly permissions: ReadonlySet<Permission>;
}

/** Parses one system resource scope; undefined if the text is not one. */
export function parseResourceScope(text: string): ResourceScope | undefined {
  const match = SCOPE_PATTERN.exec(text);
  if (!match) {
    return undefined;
  }
  const permissions = permissionsOf(match[2]);
  return permissions ? { text, resourceType: match[1], permissions } : undefined;
}

function permissionsOf(action: string): Set<Permission> | undefined {
  if (action === 'read') {
    return new Set(['r', 's']);
  }
  if (action === 'write') {
    return new Set(['c', 'u', 'd']);
  }
  if (action === '*') {
    return new Set(['c', 'r', 'u', 'd', 's']);
  }
  let last = -1;
  for (const letter of action) {
    const position = V2_ORDER.indexOf(letter);
    if (position <= last) {
      return undefined;
    }
    last = position;
  }
  return new Set(action.split('') as Permission[]);
}

/** A set of granted scopes, answering "may this token do X on type T?". */
export class ScopeSet {
  constructor(readonly scopes: readonly ResourceScope[]) {}

  /** Parses a space-separated scope string; returns the scopes it could parse and the rest. */
  static parse(scopeString: string): { scopes: ScopeSet; unrecognized: string[] } {
    const scopes: ResourceScope[] = [];
    const unrecognized: string[] = [];
    for (const text of scopeString.split(/\s+/).filter(Boolean)) {
      const scope = parseResourceScope(text);
      if (scope) {
        scopes.push(scope);
      } else {
        unrecognized.push(text);
      }
    }
    return { scopes: new ScopeSet(scopes), unrecognized };
  }

  allows(resourceType: string, permission: Permission): boolean {
    return this.scopes.some(
      (scope) => (scope.resourceType === '*' || scope.resourceType === resourceType) && scope.permissions.has(permission)
    );
  }

  /** True when everything `scope` grants is also granted by this set. */
  covers(scope: ResourceScope): boolean {
    return [...scope.permissions].every((permission) =>
      this.scopes.some(
        (granted) =>
          (granted.resourceType === '*' || granted.resourceType === scope.resourceType) && granted.permissions.has(permission)
      )
    );
  }

  toString(): string {
    return this.scopes.map((scope) => scope.text).join(' ');
  }

  get fingerprint(): string {
    return this.toString();
  }
}
