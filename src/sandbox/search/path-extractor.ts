/**
 * A fast stand-in for FHIRPath on the simplest, most common search parameter expressions.
 *
 * Most reference and token parameters are a plain path (`Observation.subject`,
 * `Encounter.participant.individual`, `Patient.identifier`), sometimes restricted by target type
 * (`Observation.subject.where(resolve() is Patient)`). Evaluating those with Medplum's FHIRPath engine
 * costs 20–40 µs per resource; walking the path in plain JavaScript costs well under 1 µs, which is
 * what lets the search index be built over 50,000 resources in milliseconds.
 *
 * Anything else (`as`, `ofType`, `extension.where(url = …)`, functions) is not compiled: the caller
 * then falls back to Medplum's FHIRPath. `test/sandbox/search-index.part.ts` checks, on the real
 * Synthea and Inferno data, that both paths yield the same values.
 *
 * @see https://hl7.org/fhirpath/N1/#path-selection
 */

/** Returns the values an expression selects from a resource (elements, not yet search values). */
export type PathExtractor = (resource: object) => unknown[];

const IDENTIFIER = '[A-Za-z][A-Za-z0-9]*';
const BRANCH_PATTERN = new RegExp(
  `^\\(?(${IDENTIFIER})((?:\\.${IDENTIFIER})+)(?:\\.where\\(\\(?resolve\\(\\) is (${IDENTIFIER})\\)?\\))?\\)?$`
);

interface CompiledBranch {
  readonly path: readonly string[];
  readonly targetType: string | undefined;
}

/**
 * Compiles `expression` (already narrowed to `resourceType`, see fhir-definitions.ts) into a plain
 * JavaScript path walker, or returns undefined when the expression is not a simple path.
 */
export function compilePathExtractor(resourceType: string, expression: string): PathExtractor | undefined {
  const branches: CompiledBranch[] = [];
  for (const branchText of expression.split(' | ')) {
    const match = BRANCH_PATTERN.exec(branchText.trim());
    if (!match || match[1] !== resourceType || hasUnbalancedParentheses(branchText)) {
      return undefined;
    }
    branches.push({ path: match[2].slice(1).split('.'), targetType: match[3] });
  }
  if (branches.length === 0) {
    return undefined;
  }
  return (resource: object) => {
    const values: unknown[] = [];
    for (const branch of branches) {
      for (const value of selectPath(resource, branch.path)) {
        if (branch.targetType === undefined || resolvedTypeOf(value) === branch.targetType) {
          values.push(value);
        }
      }
    }
    return values;
  };
}

function hasUnbalancedParentheses(text: string): boolean {
  let depth = 0;
  for (const char of text) {
    depth += char === '(' ? 1 : char === ')' ? -1 : 0;
    if (depth < 0) {
      return true;
    }
  }
  return depth !== 0;
}

function selectPath(root: object, path: readonly string[]): unknown[] {
  let current: unknown[] = [root];
  for (const key of path) {
    const next: unknown[] = [];
    for (const item of current) {
      if (item === null || typeof item !== 'object') {
        continue;
      }
      const child = (item as Record<string, unknown>)[key];
      if (Array.isArray(child)) {
        for (const element of child) {
          if (element !== undefined && element !== null) {
            next.push(element);
          }
        }
      } else if (child !== undefined && child !== null) {
        next.push(child);
      }
    }
    current = next;
  }
  return current;
}

/**
 * The resource type FHIRPath's `resolve()` gives a Reference without fetching it, mirroring
 * `@medplum/core`: `Type/id` → Type, `Type?query` → Type, a contained `resource` → its type,
 * `{type, identifier}` → type.
 */
function resolvedTypeOf(value: unknown): string | undefined {
  let referenceString: string | undefined;
  if (typeof value === 'string') {
    referenceString = value;
  } else if (value !== null && typeof value === 'object') {
    const reference = value as { reference?: unknown; resource?: unknown; type?: unknown; identifier?: unknown };
    if (reference.resource !== null && typeof reference.resource === 'object') {
      const inline = reference.resource as { resourceType?: unknown };
      return typeof inline.resourceType === 'string' ? inline.resourceType : undefined;
    }
    if (typeof reference.reference === 'string') {
      referenceString = reference.reference;
    } else if (typeof reference.type === 'string' && reference.identifier) {
      return reference.type;
    }
  }
  if (!referenceString) {
    return undefined;
  }
  if (referenceString.includes('?')) {
    return referenceString.split('?')[0];
  }
  return referenceString.includes('/') ? referenceString.split('/')[0] : undefined;
}
