/** The committed fixture child, for tests: see src/fixtures/fixture-child-intake.ts. */
export { fixtureBundle, fixtureIntake, fixtureManifest, fixturePatientId, fixturePatientIdentifier } from '../../src/fixtures/fixture-child-intake';
