// Suite 1 of 1 in this folder: runs its share of the *.part.ts files here (test/support/test-parts.ts).
import { runParts } from '../support/test-parts';

runParts(__filename);
