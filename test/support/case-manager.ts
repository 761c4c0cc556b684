/**
 * The real service with one case manager's token, and cases opened through its API: what the API
 * tests of cases and uploads start from.
 * @packageDocumentation
 */
import type { Intake } from '../../src/cases/intake-schema';
import { sampleIntake } from './intake';
import { startTestService, type TestService } from './service';

/** What {@link startCaseManagerService} starts. */
export interface CaseManagerService {
  readonly svc: TestService;
  /** A case manager's token. */
  readonly cm: string;
  /** Stops the service. */
  stop(): Promise<void>;
}

/** The real service with `env` (as `startTestService`) and a case manager's token (subject `sub`, else the default one). */
export async function startCaseManagerService(env: Record<string, string> = {}, sub?: string): Promise<CaseManagerService> {
  const svc = await startTestService(env);
  return { svc, cm: await svc.token('case_manager', sub), stop: () => svc.stop() };
}

/** Opens a case for `intake` (the sample intake by default) as `token`: `POST /api/cases`, expected 201; its id. */
export async function openCase(svc: TestService, token: string, intake: Intake = sampleIntake()): Promise<string> {
  const res = await svc.request('POST', '/api/cases', { token, body: intake });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}
