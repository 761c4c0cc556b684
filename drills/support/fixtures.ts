/** The committed fixture child (see src/fixtures/fixture-child-intake.ts). */
export { fixtureBundle, fixtureIntake, fixturePatientId } from '../../src/fixtures/fixture-child-intake';

/** A care team of the fixture child. */
export type FixtureTeam = 'care-team-a' | 'care-team-b';
