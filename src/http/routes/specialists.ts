import { z } from 'zod';
import type { CaseServiceDeps } from '../../cases/case-service';
import { createSpecialist, getSpecialist, getSpecialists, patchSpecialist } from '../../review/specialist-service';
import { NewSpecialistSchema, NuccCode, SpecialistPatchSchema, type NewSpecialistBody, type SpecialistPatchBody } from '../../review/specialist-schema';
import { defineRoute, type AnyRoute } from '../route';
import { uuidParam } from './params';

const ListQuery = z.object({
  active: z.enum(['true', 'false'], { error: 'active must be true or false' }).optional(),
  specialty: NuccCode.optional(),
});
type ListQuery = z.infer<typeof ListQuery>;

const SpecialistParams = z.object({ id: uuidParam('Specialist id must be a UUID') });
type SpecialistParams = z.infer<typeof SpecialistParams>;

/** The specialist directory (FHIR Practitioner with NPI, PractitionerRole specialties). */
export function specialistRoutes(deps: CaseServiceDeps): AnyRoute[] {
  return [
    defineRoute<NewSpecialistBody, Record<string, never>, Record<string, never>>({
      method: 'post',
      path: '/api/specialists',
      tag: 'specialists',
      summary: 'Add a specialist: NPI (check digit verified), name, NUCC specialty codes from mappings/specialty-matching.json, userSub?',
      roles: ['admin'],
      body: NewSpecialistSchema,
      responses: { 201: { description: 'Added, with its FHIR Practitioner and PractitionerRole' }, 409: { description: 'NPI or userSub already in the directory' } },
      handler: async ({ body }) => {
        const created = await createSpecialist(deps, body);
        return { status: 201, body: created, headers: { Location: `/api/specialists/${created.id}` } };
      },
    }),
    defineRoute<undefined, ListQuery, Record<string, never>>({
      method: 'get',
      path: '/api/specialists',
      tag: 'specialists',
      summary: 'The directory with each specialist’s open case count; ?active=true|false, ?specialty=<NUCC code>',
      roles: ['admin', 'case_manager'],
      query: ListQuery,
      responses: { 200: { description: 'Specialists' } },
      handler: async ({ query }) => ({
        status: 200,
        body: { items: await getSpecialists(deps, { active: query.active === undefined ? undefined : query.active === 'true', specialty: query.specialty }) },
      }),
    }),
    defineRoute<undefined, Record<string, never>, SpecialistParams>({
      method: 'get',
      path: '/api/specialists/:id',
      tag: 'specialists',
      summary: 'One specialist',
      roles: ['admin', 'case_manager'],
      params: SpecialistParams,
      responses: { 200: { description: 'The specialist' }, 404: { description: 'No such specialist' } },
      handler: async ({ params }) => ({ status: 200, body: await getSpecialist(deps, params.id) }),
    }),
    defineRoute<SpecialistPatchBody, Record<string, never>, SpecialistParams>({
      method: 'patch',
      path: '/api/specialists/:id',
      tag: 'specialists',
      summary:
        'Change a specialist: active, specialties, userSub. active: false releases their open cases (assigned, in_review, awaiting_information) back to matching — to the best other match, or waiting for a case manager — and their token opens no case any more; signed cases stay as they are',
      roles: ['admin'],
      params: SpecialistParams,
      body: SpecialistPatchSchema,
      responses: {
        200: { description: 'The specialist after the change; with active: false also `released`: per open case, `{caseId, status, outcome: reassigned | awaiting_assignment, previousAssignmentId, assignment?}`' },
        404: { description: 'No such specialist' },
        409: { description: 'userSub already belongs to another specialist' },
      },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await patchSpecialist(deps, params.id, body, principal) }),
    }),
  ] as unknown as AnyRoute[];
}
