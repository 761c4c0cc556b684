import { z } from 'zod';
import { caseAccessLog } from '../../db/audit-repository';
import { findCase } from '../../db/case-repository';
import type { Database } from '../../db/database';
import { notFound } from '../problem';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, pageQuery } from './params';

const AccessLogQuery = z.object({
  ...pageQuery(500, 100),
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
