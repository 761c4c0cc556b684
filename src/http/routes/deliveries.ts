import { z } from 'zod';
import { addRecipient, chooseRecipientPatient, getDeliveries, getRecipients, retryDelivery, type DeliveryServiceDeps } from '../../delivery/delivery-service';
import type { PatientSelector } from '../../pull/source-repository';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, ChoosePatientBody, PatientSelectorSchema, uuidParam } from './params';

const RecipientParams = CaseParams.extend({ recipientId: uuidParam('Recipient id must be a UUID') });
const DeliveryParams = CaseParams.extend({ deliveryId: uuidParam('Delivery id must be a UUID') });
type NoQuery = Record<string, never>;


const AddRecipientBody = z
  .object({
    endpointId: z.uuid({ error: 'endpointId must be the id of a registered endpoint (the referring physician\'s EHR)' }),
    patient: PatientSelectorSchema.optional().meta({ description: 'How to find the child there; default {match: true} (name + exact birth date, exactly one match).' }),
  })
  .strict();
type AddRecipientBody = z.infer<typeof AddRecipientBody>;
const ChooseBody = ChoosePatientBody.strict();

/** Where the signed report goes (recipients) and how its delivery goes (deliveries). */
export function deliveryRoutes(deps: DeliveryServiceDeps): AnyRoute[] {
  return [
    defineRoute<AddRecipientBody, NoQuery, z.infer<typeof CaseParams>>({
      method: 'post',
      path: '/api/cases/:id/recipients',
      tag: 'delivery',
      summary: "Send the report to a registered endpoint (the referring physician's EHR); delivered at signing, or now when already signed",
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: AddRecipientBody,
      responses: {
        201: { description: 'Recipient added' },
        409: { description: 'Already a recipient, or the case is closed' },
        422: { description: "The SMART scope the endpoint asks for does not allow creating DiagnosticReports there (`errors` names `endpointId`; a delivery then plans from the scope the EHR grants)" },
      },
      handler: async ({ params, body, principal }) => ({
        status: 201,
        body: await addRecipient(deps, params.id, { endpointId: body.endpointId, patient: body.patient as PatientSelector | undefined }, principal),
      }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/recipients',
      tag: 'delivery',
      summary: "The case's recipients",
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'Recipients' } },
      handler: async ({ params }) => ({ status: 200, body: { items: await getRecipients(deps, params.id) } }),
    }),
    defineRoute<z.infer<typeof ChooseBody>, NoQuery, z.infer<typeof RecipientParams>>({
      method: 'post',
      path: '/api/cases/:id/recipients/:recipientId/patient',
      tag: 'delivery',
      summary: 'Choose the child\'s Patient at the recipient (read there and checked first; a delivery in needs_review is then re-queued)',
      roles: ['case_manager', 'admin'],
      params: RecipientParams,
      body: ChooseBody,
      responses: {
        200: { description: 'Recipient updated' },
        404: { description: 'Unknown case or recipient' },
        422: {
          description:
            "`Patient/{patientId}` is not the case's child at the recipient (`errors` names `patientId`): it does not exist there (404/410), its birthDate is not the child's, it is inactive, or a link replaced-by points at another record; nothing saved",
        },
        502: { description: 'The recipient could not be asked for the patient (network error, 5xx, authorization refused); nothing saved' },
        503: { description: "The recipient's circuit breaker is open (`retryAt`); nothing saved" },
      },
      handler: async ({ params, body }) => ({ status: 200, body: await chooseRecipientPatient(deps, params.id, params.recipientId, body.patientId) }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/deliveries',
      tag: 'delivery',
      summary: 'Each delivery (version × recipient): state, attempts, remote ids, last error, review reason',
      roles: ['case_manager', 'admin', 'specialist'],
      params: CaseParams,
      responses: { 200: { description: 'Deliveries' } },
      handler: async ({ params }) => ({ status: 200, body: { items: await getDeliveries(deps, params.id) } }),
    }),
    defineRoute<undefined, NoQuery, z.infer<typeof DeliveryParams>>({
      method: 'post',
      path: '/api/cases/:id/deliveries/:deliveryId/retry',
      tag: 'delivery',
      summary: 'Re-queue a failed or needs_review delivery (202)',
      roles: ['case_manager', 'admin'],
      params: DeliveryParams,
      responses: { 202: { description: 'Queued again' }, 409: { description: 'The delivery is not failed or needs_review' } },
      handler: async ({ params }) => ({ status: 202, body: await retryDelivery(deps, params.id, params.deliveryId) }),
    }),
  ] as unknown as AnyRoute[];
}
