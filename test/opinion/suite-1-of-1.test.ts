// The 1-th of this folder's 1 suites: its share of the *.part.ts files here (test/support/test-parts.ts).
import { runParts } from '../support/test-parts';

runParts(__filename);
