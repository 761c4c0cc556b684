/** The demo after the pull: uploads, payment, assignment, the signed opinion and its delivery. */
import type { SandboxWorld } from '../../src/sandbox/sandbox-world';
import type { ApiClient } from './api-client';

export interface ReviewStepsContext {
  readonly api: ApiClient;
  readonly world: SandboxWorld;
  readonly caseId: string;
  readonly tokens: { admin: string; caseManager: string; specialist: string };
  readonly endpointIds: Readonly<Record<string, string>>;
  readonly say: (text: string) => void;
}

export async function runReviewAndDelivery(ctx: ReviewStepsContext): Promise<void> {
  ctx.say(`   bundle: GET /api/cases/${ctx.caseId}/bundle`);
}
