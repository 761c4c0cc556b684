import { z } from 'zod';

/** `:id` of every `/api/cases/:id/…` route. */
export const CaseParams = z.object({ id: z.uuid({ error: 'Case id must be a UUID' }) });
export type CaseParams = z.infer<typeof CaseParams>;
