import { z } from 'zod';
import type { PullServiceDeps } from '../../pull/pull-service';
import { assignCase, getAssignment, type AssignmentRequest } from '../../review/assignment-service';
import { reassignCase } from '../../review/reassignment-service';
import {
  InformationAnswerBody,
  InformationRequestBody,
} from '../../review/information-request-schema';
import { answerInformationRequest, createInformationRequest, getInformationRequests, informationRequestKeyScope } from '../../review/information-request-service';
import { recordDisclosedCases } from '../audit-trail';
import { idForIdempotencyKey, replayedHeader } from '../idempotency-key';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, CaseStatusList, pageQuery, uuidParam } from './params';
import { specialistWorklist } from '../../review/specialist-worklist';

const RequestParams = CaseParams.extend({ reqId: uuidParam('Request id must be a UUID') });
type NoQuery = Record<string, never>;

const AssignmentBody = z
  .strictObject({
    specialistId: uuidParam('specialistId must be the id of a specialist in the directory').optional(),
    match: z.literal(true, { error: 'match must be true (ask for the best match)' }).optional(),
  })
  .refine((b) => (b.specialistId === undefined) !== (b.match === undefined), {
    error: 'send either specialistId or match: true',
    path: ['specialistId'],
  });
type AssignmentBody = z.infer<typeof AssignmentBody>;

const ReassignmentBody = z
  .strictObject({
    specialistId: uuidParam('specialistId must be the id of a specialist in the directory').optional(),
    match: z.literal(true, { error: 'match must be true (ask for the best match other than the specialist assigned now)' }).optional(),
    reason: z.string({ error: 'reason is required: why the case changes hands (it goes on the timeline)' }).trim().min(1, { error: 'reason must not be empty' }).max(1000, { error: 'reason must be at most 1000 characters' }),
    fromAssignmentId: uuidParam('fromAssignmentId must be the id of the assignment being replaced (GET /api/cases/:id/assignment)').optional(),
  })
  .refine((b) => (b.specialistId === undefined) !== (b.match === undefined), {
    error: 'send either specialistId or match: true',
    path: ['specialistId'],
  });
type ReassignmentBody = z.infer<typeof ReassignmentBody>;

const WorklistQuery = z.object({
  status: CaseStatusList,
  ...pageQuery(200, 50, 1_000_000),
});

/** Assignment of a case to a specialist and the specialist's information requests. */
export function reviewRoutes(deps: PullServiceDeps): AnyRoute[] {
  return [
    defineRoute<undefined, z.infer<typeof WorklistQuery>, NoQuery>({
      method: 'get',
      path: '/api/worklist',
      tag: 'review',
      summary: "The specialist's worklist: the cases assigned to the specialist bound to this token's subject, the nearest SLA target first, with record and opinion progress",
      roles: ['specialist'],
      query: WorklistQuery,
      responses: { 200: { description: '`{specialist, total, items}`; `specialist: null` (and no items) when no specialist is bound to this subject' } },
      handler: async ({ query, principal, res }) => {
        const worklist = await specialistWorklist(deps, principal.sub, query);
        // Each child's name and birth date: on each case's access log before it is sent.
        await recordDisclosedCases(deps.db, res, worklist.items.map((item) => item.id));
        return { status: 200, body: worklist };
      },
    }),
    defineRoute<AssignmentBody, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/assignment',
      tag: 'review',
      summary:
        'Assign the case to {specialistId} or the best match {match: true} (specialty from the diagnosis codes, then fewest open cases). Needs records_complete and the quote paid: 409 lists what is missing',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: AssignmentBody,
      responses: {
        201: { description: 'Assigned; the case is now assigned' },
        409: { description: 'Records not complete and/or payment missing (each listed in `missing`), already assigned, or no specialist fits' },
      },
      handler: async ({ params, body, principal }) => {
        const request: AssignmentRequest = body.specialistId ? { specialistId: body.specialistId } : { match: true };
        return { status: 201, body: await assignCase(deps, params.id, request, principal) };
      },
    }),
    defineRoute<ReassignmentBody, NoQuery, CaseParams>({
      method: 'put',
      path: '/api/cases/:id/assignment',
      tag: 'review',
      summary:
        'Reassign a case that is with a specialist (assigned, in_review, awaiting_information) to {specialistId} or the best match other than the current one and those the case was reassigned away from before {match: true}, with a {reason} for the timeline, and optionally {fromAssignmentId}: the assignment being replaced (409 when the case has another one by now, e.g. after a double submit). Status, SLA, information requests and the draft stay; the previous specialist loses access. Also gives a specialist to a case released by a deactivation (waiting for one), and a signed or delivered case to another specialist when its author was deactivated (for the amendment)',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: ReassignmentBody,
      responses: {
        200: { description: 'The new assignment' },
        404: { description: 'No such case or specialist' },
        409: { description: 'Not with a specialist (or the report is signed and its author active, or the case is closed), fromAssignmentId is not the current assignment (`field: fromAssignmentId`, `currentAssignmentId`), the named specialist is the current one, inactive or the referring physician, or no other specialist fits' },
      },
      handler: async ({ params, body, principal }) => {
        const request: AssignmentRequest = body.specialistId ? { specialistId: body.specialistId } : { match: true };
        return { status: 200, body: await reassignCase(deps, params.id, request, body.reason, principal, body.fromAssignmentId) };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/assignment',
      tag: 'review',
      summary: 'The specialist the case is assigned to',
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'The assignment' }, 404: { description: 'Not assigned, or released by a deactivation and waiting for a new specialist (the detail says which)' } },
      handler: async ({ params }) => ({ status: 200, body: await getAssignment(deps, params.id) }),
    }),
    defineRoute<InformationRequestBody, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/information-requests',
      tag: 'review',
      summary:
        'The specialist asks for more: {kind: re-pull, resourceTypes} (incremental pull _since the last pull), {kind: family-upload, message} or {kind: expert-input, addOn}. Pauses the SLA clock until answered. An Idempotency-Key is scoped to (case, caller sub, key)',
      roles: ['specialist'],
      params: CaseParams,
      body: InformationRequestBody,
      responses: {
        201: { description: 'Request recorded; the case is awaiting_information' },
        403: { description: 'Not the assigned specialist, or a specialist deactivated in the directory' },
        409: { description: 'The case is not under review, waits for a new specialist (its own was deactivated), no source can be pulled, or the add-on is already approved' },
        422: { description: 'The Idempotency-Key was already used by this caller for another request on this case' },
      },
      handler: async ({ params, body, principal, req }) => {
        // With an Idempotency-Key, a double submit records one request (Idempotent-Replayed: true on
        // the second); the key is the caller's own on this case: another caller's same key is another request.
        const keyedId = idForIdempotencyKey(informationRequestKeyScope(params.id, principal.sub), req.headers['idempotency-key']);
        const { replayed, ...request } = await createInformationRequest(deps, params.id, body, principal, keyedId);
        return { status: 201, body: request, headers: replayedHeader(replayed) };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/information-requests',
      tag: 'review',
      summary: "The case's information requests, open and answered",
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: 'Requests' } },
      handler: async ({ params }) => ({ status: 200, body: { items: await getInformationRequests(deps, params.id) } }),
    }),
    defineRoute<InformationAnswerBody, NoQuery, z.infer<typeof RequestParams>>({
      method: 'post',
      path: '/api/cases/:id/information-requests/:reqId/answer',
      tag: 'review',
      summary: 'Answer an information request; when none is left open the review resumes (SLA clock runs again)',
      roles: ['case_manager', 'admin'],
      params: RequestParams,
      body: InformationAnswerBody,
      responses: { 200: { description: 'Answered' }, 409: { description: 'Answered already' } },
      handler: async ({ params, body, principal }) => ({
        status: 200,
        body: await answerInformationRequest(deps, params.id, params.reqId, body.answer, principal),
      }),
    }),
  ] as unknown as AnyRoute[];
}
