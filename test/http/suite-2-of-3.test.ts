// The 2-th of this folder's 3 suites: its share of the *.part.ts files here (test/support/test-parts.ts).
import { runParts } from '../support/test-parts';

runParts(__filename);
