/**
 * Request patterns for fault rules and request counts: `'<METHOD> <path>'`.
 *
 * - METHOD: `GET`, `POST`, … or `*` for any. A pattern without a space is a path for any method.
 * - path: relative to the server's FHIR base (`/Observation`, `/Patient/123/$everything`,
 *   `/auth/token`, `/` for the base itself).
 *   - glob: `*` matches any characters (including `/`); everything else is literal. Anchored at
 *     both ends. A glob without `?` is matched against the path only (the query string is ignored);
 *     a glob with `?` is matched against path + query (`GET /Observation?*_offset=*`).
 *   - regex: `~` followed by a JavaScript regular expression, tested against path + query
 *     (`GET ~^/Observation\?.*category=laboratory`).
 *
 * Examples: `GET /Observation*`, `* /Patient/*`, `POST /`, `GET /Binary/*`.
 */

export interface RoutePattern {
  readonly text: string;
  matches(method: string, target: string): boolean;
}

export function parseRoutePattern(text: string): RoutePattern {
  const trimmed = text.trim();
  const space = trimmed.indexOf(' ');
  const method = space > 0 ? trimmed.slice(0, space).toUpperCase() : '*';
  const path = space > 0 ? trimmed.slice(space + 1).trim() : trimmed;
  if (!/^(\*|[A-Z]+)$/.test(method)) {
    throw new Error(`Invalid method in request pattern "${text}"`);
  }
  if (!path) {
    throw new Error(`Empty path in request pattern "${text}"`);
  }
  const matchesPath = path.startsWith('~') ? regexMatcher(path.slice(1)) : globMatcher(path);
  return {
    text: trimmed,
    matches: (requestMethod, target) => (method === '*' || method === requestMethod.toUpperCase()) && matchesPath(target),
  };
}

function regexMatcher(source: string): (target: string) => boolean {
  const regex = new RegExp(source);
  return (target) => regex.test(target);
}

function globMatcher(glob: string): (target: string) => boolean {
  const includesQuery = glob.includes('?');
  const escaped = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const regex = new RegExp(`^${escaped}$`);
  return (target) => {
    const subject = includesQuery ? target : target.split('?')[0];
    return regex.test(subject);
  };
}
