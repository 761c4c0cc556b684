import { z } from 'zod';
import { caseAccessLog } from '../../db/audit-repository';
import { findCase } from '../../db/case-repository';
import type { Database } from '../../db/database';
import { notFound } from '../problem';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams } from './params';

const AccessLogQuery = z.object({
  limit: z.coerce.number({ error: 'limit must be a number' }).int().min(1, { error: 'limit must be 1 to 500' }).max(500, { error: 'limit must be 1 to 500' }).default(100),
  offset: z.coerce.number({ error: 'offset must be a number' }).int().min(0, { error: 'offset must not be negative' }).default(0),
});

/** The case's access audit, for the privacy officer (admin). */
export function accessLogRoutes(deps: { readonly db: Database }): AnyRoute[] {
  return [
    defineRoute<undefined, z.infer<typeof AccessLogQuery>, z.infer<typeof CaseParams>>({
      method: 'get',
      path: '/api/cases/:id/access-log',
      tag: 'cases',
      summary: 'Who accessed the case, newest first (case lists that showed it included): subject, roles, route pattern, method, answer (HIPAA accounting of access; no PHI)',
      roles: ['admin'],
      params: CaseParams,
      query: AccessLogQuery,
      responses: { 200: { description: '`{total, items}`' } },
      handler: async ({ params, query }) => {
        if (!(await findCase(deps.db, params.id))) throw notFound(`Case ${params.id}`);
        return { status: 200, body: await caseAccessLog(deps.db, params.id, query) };
      },
    }),
  ] as unknown as AnyRoute[];
}
