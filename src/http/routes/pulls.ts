import { z } from 'zod';
import { instantField } from '../../util/instant-schema';
import { PULL_RESOURCE_TYPES } from '../../pull/pull-plan';
import { cancelPull, getPull, retryPull, startPull, type PullServiceDeps } from '../../pull/pull-service';
import { listPulls } from '../../pull/pull-repository';
import { caseItems } from '../../cases/require-case';
import { pullProgresses } from '../../pull/pull-progress';
import { addSource, chooseSourcePatient, getSources, removeSource, type SourceServiceDeps } from '../../pull/source-service';
import type { PatientSelector } from '../../pull/source-repository';
import type { AssembleDeps } from '../../assembly/assemble';
import { assembleAfterSourceChange } from '../../assembly/source-changes';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, ChoosePatientBody, PatientSelectorSchema, reasonField, uuidParam } from './params';

const SourceParams = CaseParams.extend({ sourceId: uuidParam('Source id must be a UUID') });
const PullParams = CaseParams.extend({ pullId: uuidParam('Pull id must be a UUID') });
type NoQuery = Record<string, never>;

const AddSourceBody = z.object({
  endpointId: z.uuid({ error: 'endpointId must be the id of a registered endpoint' }),
  patient: PatientSelectorSchema,
});
type AddSourceBody = z.infer<typeof AddSourceBody>;

const ChooseBody = ChoosePatientBody;

const StartPullBody = z
  .object({
    since: instantField('since', '2026-10-01T00:00:00Z').optional(),
    types: z
      .array(z.enum(PULL_RESOURCE_TYPES, { error: `types must be among ${PULL_RESOURCE_TYPES.join(', ')}` }))
      .min(1)
      .optional(),
  })
  .strict();
type StartPullBody = z.infer<typeof StartPullBody>;

const RemoveSourceBody = z.object({ reason: reasonField }).strict();
type RemoveSourceBody = z.infer<typeof RemoveSourceBody>;

const CancelPullBody = z
  .object({ reason: reasonField })
  .strict();
type CancelPullBody = z.infer<typeof CancelPullBody>;

/** The source after a change whose records must leave the bundle, with the version assembled without them (`bundleVersion`). */
async function withBundleLeft<T extends object>(deps: AssembleDeps, caseId: string, trigger: string, source: T): Promise<T & { bundleVersion?: number }> {
  const bundleVersion = await assembleAfterSourceChange(deps, caseId, trigger);
  return { ...source, ...(bundleVersion !== undefined ? { bundleVersion } : {}) };
}

/** Sources of a case (local care teams' endpoints + which patient there) and record pulls. */
export function pullRoutes(deps: PullServiceDeps & SourceServiceDeps & AssembleDeps): AnyRoute[] {
  return [
    defineRoute<AddSourceBody, NoQuery, z.infer<typeof CaseParams>>({
      method: 'post',
      path: '/api/cases/:id/sources',
      tag: 'pulls',
      summary: 'Add a local care team as a source: find the child there by id, identifier or name + exact birth date',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: AddSourceBody,
      responses: {
        201: { description: 'Source added: resolved, or needs_review with the candidates' },
        404: { description: 'No such case, or no registered endpoint `endpointId` (`errors` names `endpointId`)' },
        409: { description: 'Already a source, or the case takes no new sources (ended or delivered)' },
        502: { description: 'The endpoint (EHR) could not be asked for the patient: unreachable, an error answer, or its authorization refused; nothing saved' },
      },
      handler: async ({ params, body, principal }) => ({
        status: 201,
        body: await addSource(deps, params.id, { endpointId: body.endpointId, patient: body.patient as PatientSelector }, principal),
      }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/sources',
      tag: 'pulls',
      summary: "The case's sources",
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'Sources' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => ({ status: 200, body: await caseItems(deps.db, params.id, await getSources(deps, params.id)) }),
    }),
    defineRoute<z.infer<typeof ChooseBody>, NoQuery, z.infer<typeof SourceParams>>({
      method: 'post',
      path: '/api/cases/:id/sources/:sourceId/patient',
      tag: 'pulls',
      summary:
        'Choose the patient of a source that needs review, or another child when the first match was wrong (the case manager decides, never the service)',
      roles: ['case_manager', 'admin'],
      params: SourceParams,
      body: ChooseBody,
      responses: {
        200: { description: 'Source resolved; when the patient changed, the bundle is assembled again without the previous patient\'s records (`bundleVersion`)' },
        409: { description: 'The source was removed from the case' },
      },
      handler: async ({ params, body, principal }) => {
        const source = await chooseSourcePatient(deps, params.id, params.sourceId, body.patientId, principal);
        return { status: 200, body: await withBundleLeft(deps, params.id, `source-patient:${params.sourceId}`, source) };
      },
    }),
    defineRoute<RemoveSourceBody, NoQuery, z.infer<typeof SourceParams>>({
      method: 'post',
      path: '/api/cases/:id/sources/:sourceId/remove',
      tag: 'pulls',
      summary: 'Remove a source added by mistake: no pull asks it again, its records leave the bundle (kept in the raw store); the endpoint may be added again',
      roles: ['case_manager', 'admin'],
      params: SourceParams,
      body: RemoveSourceBody,
      responses: {
        200: { description: 'Source removed (again: the same answer); when a bundle existed it is assembled again without its records (`bundleVersion`)' },
      },
      handler: async ({ params, body, principal }) => {
        const source = await removeSource(deps, params.id, params.sourceId, body.reason, principal);
        return { status: 200, body: await withBundleLeft(deps, params.id, `source-removed:${params.sourceId}`, source) };
      },
    }),
    defineRoute<StartPullBody, NoQuery, z.infer<typeof CaseParams>>({
      method: 'post',
      path: '/api/cases/:id/pulls',
      tag: 'pulls',
      summary: 'Start a record pull from every resolved source (202); `since` for an incremental re-pull',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: StartPullBody,
      responses: { 202: { description: 'Pull queued: {pullId}' }, 409: { description: 'No source ready, or the case cannot pull now' } },
      handler: async ({ params, body, principal }) => {
        const started = await startPull(deps, params.id, body, principal);
        return { status: 202, body: started, headers: { Location: `/api/cases/${params.id}/pulls/${started.pullId}` } };
      },
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/pulls',
      tag: 'pulls',
      summary: "The case's pulls with their progress, newest first",
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'Pulls' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => {
        const pulls = await listPulls(deps.db, params.id);
        return { status: 200, body: await caseItems(deps.db, params.id, await pullProgresses(deps.db, params.id, pulls)) };
      },
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof PullParams>>({
      method: 'get',
      path: '/api/cases/:id/pulls/:pullId',
      tag: 'pulls',
      summary: 'Progress of a pull per source and resource type: state, pages, resources, attachments, retries, last error',
      roles: ['case_manager', 'admin', 'specialist'],
      params: PullParams,
      responses: { 200: { description: 'Pull progress' } },
      handler: async ({ params }) => ({ status: 200, body: await getPull(deps, params.id, params.pullId) }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof PullParams>>({
      method: 'post',
      path: '/api/cases/:id/pulls/:pullId/retry',
      tag: 'pulls',
      summary: 'Retry just what failed in a partial or failed pull (202)',
      roles: ['case_manager', 'admin'],
      params: PullParams,
      responses: { 202: { description: 'Retry queued' }, 409: { description: 'The pull is not partial or failed' } },
      handler: async ({ params }) => ({ status: 202, body: await retryPull(deps, params.id, params.pullId) }),
    }),
    defineRoute<CancelPullBody, NoQuery, z.infer<typeof PullParams>>({
      method: 'post',
      path: '/api/cases/:id/pulls/:pullId/cancel',
      tag: 'pulls',
      summary: 'Cancel a queued or running pull: queries stop at their next page, no bundle is assembled from it; what was stored stays',
      roles: ['case_manager', 'admin'],
      params: PullParams,
      body: CancelPullBody,
      responses: { 200: { description: 'The pull, cancelled (again: the same answer)' }, 409: { description: 'The pull has already ended' } },
      handler: async ({ params, body, principal }) => ({ status: 200, body: await cancelPull(deps, params.id, params.pullId, body.reason, principal) }),
    }),
  ] as unknown as AnyRoute[];
}
