import type { Bundle, FhirResource } from 'fhir/r4';
import type { Intake } from '../../src/cases/intake-schema';
import type { SandboxServer } from '../../src/sandbox';
import { referredIntake } from '../../src/fixtures/fixture-child-intake';

export { referredIntake };
import { openCase } from './case-manager';
import type { TestService } from './service';

/** Opens a case and puts it in `status` directly (the steps before review are other capabilities' tests). */
export async function openCaseIn(svc: TestService, cm: string, status: string, intake: Intake = referredIntake()): Promise<string> {
  const id = await openCase(svc, cm, intake);
  await svc.service.db.query('UPDATE cases SET status = $2, revision = revision + 1 WHERE id = $1', [id, status]);
  return id;
}

/** An opinion body answering every question of `intake`. */
export function opinionFor(intake: Intake, extra: Partial<Record<'summary' | 'followUp', string>> = {}) {
  return {
    summary: extra.summary ?? 'Her diabetes control can improve with a pump; growth is in keeping with celiac disease under treatment.',
    diagnosisAssessment: 'Type 1 diabetes and celiac disease are both confirmed by the records (HbA1c trend, tTG-IgA, biopsy).',
    recommendations: 'Start continuous subcutaneous insulin infusion with CGM; strict gluten-free diet with dietitian follow-up.',
    answers: intake.questions.map((question, i) => ({ question, answer: `Answer ${i + 1}: ${i === 0 ? 'yes, a pump with CGM is recommended.' : 'partly; catch-up growth is expected on the diet.'}` })),
    followUp: extra.followUp ?? 'Endocrinology review in 3 months; growth check in 6 months.',
  };
}

/** Searches the sandbox over HTTP (as any client of that EHR would) and returns the matches. */
export async function searchSandbox<T extends FhirResource>(server: SandboxServer, clientId: string, type: string, params: Record<string, string>): Promise<T[]> {
  const token = server.auth === 'smart' ? server.issueAccessToken(clientId) : undefined;
  const url = new URL(`${server.baseUrl}/${type}`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { headers: { accept: 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  if (res.status !== 200) throw new Error(`search ${type} answered ${res.status}`);
  const bundle = (await res.json()) as Bundle;
  return (bundle.entry ?? []).filter((e) => e.resource?.resourceType === type && (e.search?.mode ?? 'match') === 'match').map((e) => e.resource as T);
}
