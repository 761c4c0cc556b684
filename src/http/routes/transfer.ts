import { z } from 'zod';
import { fhirControlRefusal, fhirStringControlIn } from '../../fhir/fhir-text';
import type { Database } from '../../db/database';
import type { WorkDispatch } from '../../notify/events';
import { listTransferRequests, requestTransfer, type TransferBody } from '../../transfer/transfer-service';
import { caseItems } from '../../cases/require-case';
import { uploadTokenAuth } from '../../uploads/upload-tokens';
import { defineRoute, type AnyRoute } from '../route';
import { idForIdempotencyKey, replayedHeader } from '../idempotency-key';
import { CaseParams } from './params';

type NoQuery = Record<string, never>;
/** Text that goes into the ServiceRequest as FHIR strings: a control character FHIR cannot carry is refused, naming it. */
const text = (label: string, max: number) =>
  z
    .string({ error: `${label} must be text` })
    .trim()
    .min(1, { error: `${label} must not be empty` })
    .max(max, { error: `${label} must be at most ${max} characters` })
    .refine((s) => fhirStringControlIn(s) === undefined, {
      error: (issue) => fhirControlRefusal(label, fhirStringControlIn(String(issue.input)), ''),
    });
const TransferBodySchema = z
  .object({
    reason: text('reason', 2000),
    destination: z.object({ organization: text('destination.organization', 200).optional(), physician: text('destination.physician', 200).optional() }).strict().optional(),
    note: text('note', 5000).optional(),
  })
  .strict();

/**
 * The family's request to transfer care: recorded by the case manager, or sent by the family
 * portal with the case's upload token (the same per-case token the portal uploads with).
 */
export function transferRoutes(deps: { db: Database; dispatch: WorkDispatch }): AnyRoute[] {
  return [
    defineRoute<TransferBody, NoQuery, z.infer<typeof CaseParams>>({
      method: 'post',
      path: '/api/cases/:id/transfer-request',
      tag: 'transfer',
      summary: 'The family asks to transfer care: a ServiceRequest (intent proposal, SNOMED 308292007), a timeline event, the case manager notified',
      roles: ['case_manager', 'admin'],
      scopedToken: uploadTokenAuth(() => deps.db),
      params: CaseParams,
      body: TransferBodySchema,
      responses: {
        201: { description: 'The request with its ServiceRequest. With an Idempotency-Key header a resend answers the request already recorded (header Idempotent-Replayed: true)' },
        409: { description: 'The case is not under review yet' },
        422: { description: 'The Idempotency-Key was already used for another transfer request' },
      },
      handler: async ({ params, body, principal, req }) => {
        const { replayed, ...recorded } = await requestTransfer(deps, params.id, body, principal, idForIdempotencyKey(`transfer:${params.id}`, req.headers['idempotency-key']));
        return { status: 201, body: recorded, headers: replayedHeader(replayed) };
      },
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/transfer-requests',
      tag: 'transfer',
      summary: "The case's transfer-of-care requests with their ServiceRequests",
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'Transfer requests' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => ({ status: 200, body: await caseItems(deps.db, params.id, await listTransferRequests(deps.db, params.id)) }),
    }),
  ] as unknown as AnyRoute[];
}
