import { z } from 'zod';
import { IntakeSchema, type Intake } from '../../cases/intake-schema';
import {
  changeCaseStatus,
  getCaseDetail,
  getCaseFhirBundle,
  listCaseSummaries,
  openCase,
  type CaseServiceDeps,
} from '../../cases/case-service';
import { CASE_STATUSES } from '../../cases/lifecycle';
import { idForIdempotencyKey, replayedHeader } from '../idempotency-key';
import { CaseParams, CaseStatusList, pageQuery } from './params';
import { recordDisclosedCases } from '../audit-trail';
import { defineRoute, type AnyRoute } from '../route';


const ListQuery = z.object({
  status: CaseStatusList,
  specialistId: z.uuid({ error: 'specialistId must be the id of a specialist in the directory' }).optional(),
  overdue: z
    .enum(['true', 'false', 'target', 'limit'], { error: 'overdue must be true, false, target or limit' })
    .optional(),
  ...pageQuery(200, 50),
});

const TransitionBody = z.object({
  to: z.enum(CASE_STATUSES, { error: `to must be one of: ${CASE_STATUSES.join(', ')}` }),
  reason: z.string().trim().max(2000, { error: 'reason must be at most 2000 characters' }).optional(),
});

const CreatedCase = z.object({
  id: z.uuid(),
  status: z.string(),
  // What openCase answers (case-service.ts `CreatedCase`): `rulesVersion` is absent only when a
  // request replayed by its Idempotency-Key opened its case before the version was recorded.
  eligibility: z.object({
    eligible: z.boolean(),
    reasons: z.array(z.string()).meta({ description: 'Sentences to read to the family, in order (urgent first); empty when eligible' }),
    reasonCodes: z.array(z.string()).meta({ description: 'Stable codes, one per reason, in the same order' }),
    rulesVersion: z.string().optional().meta({ description: 'The `version` of mappings/eligibility.json that decided, kept with the case' }),
  }),
  quote: z.object({ currency: z.string(), base: z.number(), total: z.number() }).loose(),
  possibleDuplicates: z.array(z.object({ id: z.uuid(), status: z.string(), createdAt: z.string() })),
  ignoredFields: z.array(z.string()).meta({ description: 'Members of the intake the API does not know (dotted paths, the first 20), not stored: a misspelt optional field shows here' }),
});

/** More of the case shown with its detail (sources, pulls), supplied by the capabilities that own them. */
export type CaseDetailExtras = (caseId: string) => Promise<Record<string, unknown>>;

/** Case intake, listing, detail with timeline, lifecycle transitions and the case's FHIR face. */
export function caseRoutes(deps: CaseServiceDeps, detailExtras: CaseDetailExtras = async () => ({})): AnyRoute[] {
  return [
    defineRoute<Intake, Record<string, never>, Record<string, never>>({
      method: 'post',
      path: '/api/cases',
      tag: 'cases',
      summary: 'Open a case (intake): checks eligibility and answers the quote',
      roles: ['case_manager', 'admin'],
      body: IntakeSchema as z.ZodType<Intake>,
      responses: {
        201: {
          description:
            'Case opened (eligible or not; see eligibility). With an Idempotency-Key header, the same request sent again answers the case it opened ' +
            '(header Idempotent-Replayed: true) instead of opening a second one',
          schema: CreatedCase,
        },
        422: { description: 'The Idempotency-Key was already used for another intake' },
      },
      handler: async ({ body, principal, req, ignoredFields }) => {
        const { replayed, ...created } = await openCase(deps, body, principal, idForIdempotencyKey(`case:${principal.sub}`, req.headers['idempotency-key']));
        // What of the intake was not taken (unknown members): said, so that a misspelt optional field is not lost unnoticed.
        return { status: 201, body: { ...created, ignoredFields }, headers: { Location: `/api/cases/${created.id}`, ...replayedHeader(replayed) } };
      },
    }),
    defineRoute<undefined, z.infer<typeof ListQuery>, Record<string, never>>({
      method: 'get',
      path: '/api/cases',
      tag: 'cases',
      summary: 'List cases, filtered by status, by SLA overdue and by the specialist they are assigned to',
      roles: ['case_manager', 'admin'],
      query: ListQuery,
      responses: { 200: { description: 'A page of case summaries' } },
      handler: async ({ query, res }) => {
        const list = await listCaseSummaries(deps, query);
        // Each child's name and birth date: on each case's access log before it is sent.
        await recordDisclosedCases(deps.db, res, list.items.map((item) => item.id));
        return { status: 200, body: list };
      },
    }),
    defineRoute<undefined, Record<string, never>, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id',
      tag: 'cases',
      summary: 'A case with its intake, eligibility, quote, SLA, timeline, sources and pulls (with progress)',
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'The case' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => {
        const detail = await getCaseDetail(deps, params.id);
        return { status: 200, body: { ...detail, ...(await detailExtras(params.id)) } };
      },
    }),
    defineRoute<z.infer<typeof TransitionBody>, Record<string, never>, z.infer<typeof CaseParams>>({
      method: 'post',
      path: '/api/cases/:id/transitions',
      tag: 'cases',
      summary: 'Move a case through its lifecycle; 409 names the allowed transitions',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: TransitionBody,
      responses: {
        200: { description: 'The case after the transition' },
        404: { description: 'No such case (whatever `to` asked)' },
        409: {
          description:
            'Illegal transition (`currentStatus`, `allowedTransitions`: the statuses this route moves it to, `workflowTransitions`: `{to, route, detail}` reached only through their workflow route), ' +
            'a status only its workflow route reaches (assigned, report_signed, delivered), back to in_review while information requests are open, or records_complete while a pull runs or before a current bundle is assembled',
        },
      },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await changeCaseStatus(deps, params.id, body.to, body.reason, principal) }),
    }),
    defineRoute<undefined, Record<string, never>, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/fhir',
      tag: 'cases',
      summary: "The case's FHIR face: Patient, RelatedPerson, Consent and ServiceRequest (collection Bundle)",
      roles: ['case_manager', 'admin', 'specialist', 'ehr'],
      params: CaseParams,
      fhir: true,
      responses: { 200: { description: 'FHIR R4 Bundle (collection)', contentType: 'application/fhir+json' } },
      handler: async ({ params }) => ({
        status: 200,
        contentType: 'application/fhir+json',
        body: await getCaseFhirBundle(deps, params.id),
      }),
    }),
  ] as unknown as AnyRoute[];
}
