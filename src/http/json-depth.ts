/** How deep a request body may nest: no API body needs more, and deeper ones exhaust recursive walkers. */
export const MAX_BODY_DEPTH = 32;

/**
 * Whether a parsed JSON value nests deeper than `limit` (objects and arrays count one level
 * each). Iterative, so a hostile body cannot exhaust the stack here.
 */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
