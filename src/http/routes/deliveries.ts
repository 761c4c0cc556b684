import { z } from 'zod';
import { addRecipient, chooseRecipientPatient, getDeliveries, getRecipients, retryDelivery, settleDeliveryInDoubt, type DeliveryServiceDeps, type SettleInDoubt } from '../../delivery/delivery-service';
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

/** What the case manager found in the chart for a delivery in doubt: its report's id there, or that it is not there. */
const SettleBody = z
  .strictObject({
    found: z
      .string({ error: 'found must be the id of the DiagnosticReport at the recipient' })
      .regex(/^[A-Za-z0-9\-.]{1,64}$/, { error: 'found must be the id of the DiagnosticReport at the recipient (a FHIR id)' })
      .optional()
      .meta({ description: "The recipient's id of this version's DiagnosticReport, found in the child's chart there" }),
    absent: z.literal(true, { error: 'absent must be true (the report is not in the chart there)' }).optional().meta({ description: 'The report is not in the child\'s chart there' }),
  })
  .refine((b) => (b.found === undefined) !== (b.absent === undefined), { error: 'send either found (the DiagnosticReport id at the recipient) or absent: true', path: ['found'] });
type SettleBody = z.infer<typeof SettleBody>;

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
        404: { description: 'No such case, or no registered endpoint `endpointId` (`errors` names `endpointId`)' },
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
    defineRoute<SettleBody, NoQuery, z.infer<typeof DeliveryParams>>({
      method: 'post',
      path: '/api/cases/:id/deliveries/:deliveryId/settle',
      tag: 'delivery',
      summary:
        "Record what the case manager found in the child's chart at the recipient for a delivery in doubt (its write was sent, its answer never came): {found: DiagnosticReport id} or {absent: true}; later versions held in needs_review by it are queued again",
      roles: ['case_manager', 'admin'],
      params: DeliveryParams,
      body: SettleBody,
      responses: {
        200: { description: 'Settled: the delivery (`inDoubt` false), with `requeued`, the ids of the later deliveries queued again' },
        400: { description: 'Neither or both of `found` and `absent`, or `found` not a FHIR id (`errors` names the field)' },
        404: { description: 'Unknown case or delivery' },
        409: { description: 'The delivery is not in doubt: never written, its report on record, its doubt already cleared, or writing now (`errors` names `found` or `absent`)' },
        422: { description: '`found` does not exist at the recipient or does not carry this version\'s report identifier (`errors` names `found`); nothing recorded' },
        502: { description: 'The recipient could not be asked for the DiagnosticReport; nothing recorded' },
        503: { description: "The recipient's circuit breaker is open (`retryAt`); nothing recorded" },
      },
      handler: async ({ params, body, principal }) => {
        const settled: SettleInDoubt = body.found !== undefined ? { found: body.found } : { absent: true };
        return { status: 200, body: await settleDeliveryInDoubt(deps, params.id, params.deliveryId, settled, principal) };
      },
    }),
  ] as unknown as AnyRoute[];
}
