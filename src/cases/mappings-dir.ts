/**
 * Finding and reading the rule data in `mappings/`.
 *
 * Source runs from `src/cases` and compiled code from `dist/src/cases`, so the
 * default directory is found by walking up from this file to the first folder
 * that holds both a `package.json` and a `mappings/` directory (the repository
 * or image root). Callers may always pass a directory instead.
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';

/** Thrown when rule data cannot be found, read, parsed or validated. */
export class MappingsError extends Error {
  override readonly name = 'MappingsError';
  constructor(
    message: string,
    /** The file involved, when there is one. */
    readonly file?: string,
  ) {
    super(message);
  }
}

/**
 * The default `mappings/` directory: walks up from `startDir` (this module's folder) to the
 * nearest ancestor containing `package.json` and a `mappings` folder.
 * @throws MappingsError when no such folder exists up to the filesystem root
 */
export function defaultMappingsDir(startDir: string = __dirname): string {
  let dir = path.resolve(startDir);
  for (;;) {
    const candidate = path.join(dir, 'mappings');
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(candidate) && fs.statSync(candidate).isDirectory()) {
      return candidate;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new MappingsError(`No mappings/ folder next to a package.json above ${startDir}`);
    }
    dir = parent;
  }
}

/** Members that name a row of rule data, in the order one is chosen to name it in an error. */
const ROW_NAMES = ['code', 'id', 'unit', 'system', 'source', 'specialty', 'name', 'state'] as const;

/**
 * An issue's path, each array row named by its own `code` (or id, unit, specialty, name, state…) where
 * it has one: `group.0.element.3[code "TEMP-1"].quantity.plausible`, `excludedStates.10[name
 * "Nowhere"].state`, so a person editing the file finds the row without counting.
 */
function issuePath(issuePathKeys: readonly PropertyKey[], json: unknown): string {
  const parts: string[] = [];
  let at: unknown = json;
  for (const key of issuePathKeys) {
    at = typeof at === 'object' && at !== null ? (at as Record<PropertyKey, unknown>)[key] : undefined;
    let part = String(key);
    if (typeof key === 'number' && typeof at === 'object' && at !== null) {
      const row = at as Record<string, unknown>;
      const name = ROW_NAMES.find((n) => typeof row[n] === 'string');
      if (name !== undefined) part += `[${name} ${JSON.stringify(row[name])}]`;
    }
    parts.push(part);
  }
  return parts.join('.');
}

/** Formats zod issues as `path: message` lines for a configuration error (`json`: the file's content, to name rows). */
function describeIssues(error: z.ZodError, json: unknown): string {
  return error.issues.map((issue) => `  ${issuePath(issue.path, json) || '(root)'}: ${issue.message}`).join('\n');
}

/**
 * Reads `<dir>/<fileName>`, parses it as JSON and validates it with `schema`.
 * @throws MappingsError naming the file and every problem found
 */
export function readMappingFile<T extends z.ZodType>(dir: string, fileName: string, schema: T): z.output<T> {
  const file = path.join(dir, fileName);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MappingsError(`Cannot read rule data ${file}: ${(err as Error).message}`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new MappingsError(`Rule data ${file} is not valid JSON: ${(err as Error).message}`, file);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new MappingsError(`Rule data ${file} is invalid:\n${describeIssues(result.error, json)}`, file);
  }
  return result.data;
}
