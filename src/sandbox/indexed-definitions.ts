/**
 * The FHIR definitions as `@medplum/core` holds them once indexed (its type schemas and its search
 * parameters, after `fhir-definitions.ts` has narrowed them), kept on disk as V8 serializes them.
 *
 * Indexing the R4 StructureDefinitions (`indexStructureDefinitionBundle`) and SearchParameters costs
 * ~0.6–0.8 s of CPU in every process — and every Jest test file — that starts a sandbox server,
 * even from the slim copies of `structure-definitions.ts`; reading back what it built takes ~0.1 s
 * (`v8.deserialize` of ~8 MB). The indexed state is plain data — objects, arrays and `Set`s, no
 * functions — in two maps `@medplum/core` exports, `getAllDataTypes()` and `globalSchema.types`;
 * the R4 base definitions register nothing else (their two constraint profiles, SimpleQuantity and
 * MoneyQuantity, go in the data-type map too). A restore writes the saved entries into those two
 * maps.
 *
 * The snapshot is named by what it was built from: `@medplum/core` (its file's size and
 * modification time), the definition files (the same), V8's version and this module's format. It
 * is written to a temporary name and renamed (`machine-cache.ts`), so a reader never sees half of
 * one; one that cannot be read, or does not hold what is expected, is built again from the
 * definitions.
 * @see https://nodejs.org/api/v8.html#serialization-api
 * @packageDocumentation
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import type { DataTypesMap, IndexedStructureDefinition } from '@medplum/core';
import { fileStamp, writeCacheFile } from './machine-cache';
import { SLIM_DEFINITIONS_DIR } from './structure-definitions';

/** How a snapshot's file name starts. */
const SNAPSHOT_KIND = 'indexed-';

/** Bump when what a snapshot holds changes: older snapshots are then not read. */
const SNAPSHOT_FORMAT = 1;

/** The parts of `@medplum/core` that hold the indexed definitions. */
export interface DefinitionMaps {
  getAllDataTypes(): DataTypesMap;
  readonly globalSchema: IndexedStructureDefinition;
}

/** What a snapshot holds. */
interface IndexedDefinitions {
  readonly format: number;
  readonly dataTypes: DataTypesMap;
  readonly schemaTypes: IndexedStructureDefinition['types'];
  readonly resourceTypes: string[];
}

/**
 * The snapshot's file for the definitions in `sourceFiles` (absolute paths), in `dir`; `undefined`
 * when one of them cannot be read (then nothing is saved or read back).
 */
export function snapshotFile(sourceFiles: readonly string[], dir = SLIM_DEFINITIONS_DIR): string | undefined {
  try {
    const stamps = [require.resolve('@medplum/core'), ...sourceFiles].map(fileStamp);
    return path.join(dir, `${SNAPSHOT_KIND}${stamps.join('_')}-v8.${process.versions.v8}-v${SNAPSHOT_FORMAT}.bin`);
  } catch {
    return undefined;
  }
}

/** Saves what `maps` hold now, and the concrete resource types, to `file` (nothing lost if it cannot). */
export function saveIndexedDefinitions(maps: DefinitionMaps, resourceTypes: readonly string[], file: string): void {
  const snapshot: IndexedDefinitions = { format: SNAPSHOT_FORMAT, dataTypes: maps.getAllDataTypes(), schemaTypes: maps.globalSchema.types, resourceTypes: [...resourceTypes] };
  writeCacheFile(file, v8.serialize(snapshot), SNAPSHOT_KIND);
}

/**
 * Writes the snapshot in `file` into `maps` and returns its concrete resource types; `undefined`
 * (and `maps` untouched) when there is none or it does not hold what a snapshot holds.
 */
export function restoreIndexedDefinitions(maps: DefinitionMaps, file: string): readonly string[] | undefined {
  let snapshot: unknown;
  try {
    snapshot = v8.deserialize(fs.readFileSync(file));
  } catch {
    return undefined;
  }
  if (!isIndexedDefinitions(snapshot)) return undefined;
  Object.assign(maps.getAllDataTypes(), snapshot.dataTypes);
  Object.assign(maps.globalSchema.types, snapshot.schemaTypes);
  return snapshot.resourceTypes;
}

function isIndexedDefinitions(value: unknown): value is IndexedDefinitions {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<Record<keyof IndexedDefinitions, unknown>>;
  return v.format === SNAPSHOT_FORMAT && isRecord(v.dataTypes) && isRecord(v.schemaTypes)
    && Array.isArray(v.resourceTypes) && v.resourceTypes.length > 0 && v.resourceTypes.every((t) => typeof t === 'string');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0;
}
