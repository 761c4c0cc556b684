/**
 * Text no request needs and PostgreSQL cannot store: U+0000 (refused in `text` and `jsonb`) and
 * unpaired UTF-16 surrogates (`\ud800` alone has no UTF-8 form). JSON allows both as escapes, so a
 * body can carry them; checked before any handler, they are a 400 naming the field instead of a
 * database error in the middle of a transaction (a 500).
 */
import { isUnstorableText } from '../util/storable-text';

export { isUnstorableText };

/**
 * The path of the first string (a value, or an object key) in a parsed JSON value that PostgreSQL
 * cannot store, or undefined. Iterative, like the depth check.
 */
export function unstorableTextAt(value: unknown): (string | number)[] | undefined {
  const stack: [unknown, (string | number)[]][] = [[value, []]];
  while (stack.length > 0) {
    const [current, path] = stack.pop() as [unknown, (string | number)[]];
    if (typeof current === 'string') {
      if (isUnstorableText(current)) return path;
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push([current[i], [...path, i]]);
      continue;
    }
    const entries = Object.entries(current as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i] as [string, unknown];
      if (isUnstorableText(key)) return [...path, key];
      stack.push([child, [...path, key]]);
    }
  }
  return undefined;
}
