// The 3-th of this folder's 4 suites: its share of the *.part.ts files here (test/support/test-parts.ts).
import { runParts } from '../support/test-parts';

runParts(__filename);
