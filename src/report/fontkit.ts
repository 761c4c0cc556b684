/**
 * `@pdf-lib/fontkit`, required on first use rather than when the module graph loads: ~0.2 s of
 * start-up (most of the report code's load time) that a process which never reads a font is spared.
 * @packageDocumentation
 */
import type * as Fontkit from '@pdf-lib/fontkit';

let loaded: typeof Fontkit | undefined;

/** The fontkit module (loaded once). */
export function fontkit(): typeof Fontkit {
  loaded ??= require('@pdf-lib/fontkit') as typeof Fontkit;
  return loaded;
}

/** Whether fontkit was loaded in this module registry (for tests of what start-up loads). */
export function fontkitLoaded(): boolean {
  return loaded !== undefined;
}
