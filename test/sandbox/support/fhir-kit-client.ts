/**
 * Loads fhir-kit-client 2.x inside Jest.
 *
 * fhir-kit-client 2.0.3 is ESM-only (`"type": "module"`, `exports` has only an `import` condition).
 * Jest runs this project's tests as CommonJS, and on Node 20 Jest cannot `require()` an ES module
 * (it supports that natively only from Node 24.9, or with `--experimental-vm-modules`). So this
 * helper compiles the package's own `dist/*.js` files from ESM to CommonJS with TypeScript's
 * `transpileModule` (syntax only, the code is unchanged) and evaluates them with a small module
 * loader. Bare imports (agentkeepalive, debug, json-stringify-safe) are ordinary CommonJS packages.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as FhirKitClientModule from 'fhir-kit-client' with { 'resolution-mode': 'import' };
import ts from 'typescript';

export type FhirKitClient = FhirKitClientModule.Client;
export type FhirKitClientConstructor = typeof FhirKitClientModule.Client;
export type FhirKitResource = FhirKitClientModule.FhirResource;
type FhirKitPage = Parameters<FhirKitClient['nextPage']>[0]['bundle'];

/** A typed FHIR resource as fhir-kit-client's loosely typed `FhirResource`. */
export function toKit(resource: { resourceType: string }): FhirKitResource {
  return resource as unknown as FhirKitResource;
}

/** A Bundle as the argument of `nextPage`. */
export function toKitPage(bundle: { resourceType: string }): FhirKitPage {
  return bundle as unknown as FhirKitPage;
}

/** What fhir-kit-client returned, as the FHIR type the caller expects. */
export function fromKit<T>(value: unknown): T {
  return value as T;
}

const distDir = path.resolve(__dirname, '../../../node_modules/fhir-kit-client/dist');
let cached: typeof FhirKitClientModule | undefined;

/** The fhir-kit-client module (`{ Client, … }`), loaded once per test file. */
export function loadFhirKitClient(): typeof FhirKitClientModule {
  cached ??= loadModule(path.join(distDir, 'index.js'), new Map()) as typeof FhirKitClientModule;
  return cached;
}

function loadModule(file: string, registry: Map<string, { exports: unknown }>): unknown {
  const existing = registry.get(file);
  if (existing) {
    return existing.exports;
  }
  const module = { exports: {} as unknown };
  registry.set(file, module);
  const source = readFileSync(file, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: file,
  });
  const localRequire = (specifier: string): unknown =>
    specifier.startsWith('.') ? loadModule(path.resolve(path.dirname(file), specifier), registry) : require(specifier);
  const evaluate = new Function('exports', 'require', 'module', '__filename', '__dirname', outputText) as (
    exports: unknown,
    require: (specifier: string) => unknown,
    module: { exports: unknown },
    filename: string,
    dirname: string
  ) => void;
  evaluate(module.exports, localRequire, module, file, path.dirname(file));
  return module.exports;
}
