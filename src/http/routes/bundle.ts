import { z } from 'zod';
import { assembleCase, type AssembleDeps } from '../../assembly/assemble';
import { findBundleVersion, findReport, readBundleHead } from '../../assembly/bundle-repository';
import type { Config } from '../../config';
import { CASE_RECORD_CSP, caseRecordHtml } from '../../report/case-record-html';
import { bundleChanges, type BundleChanges } from '../../assembly/bundle-changes';
import { bundleVersionView, latestBundleVersion, listBundleVersions } from '../../assembly/bundle-versions';
import { refuseOutdatedRecords } from '../../assembly/source-changes';
import { requireCaseExists } from '../../cases/require-case';
import type { Queryable } from '../../db/database';
import { DEDUPE_RULE_NAMES } from '../../normalize/dedupe';
import { answeredNotModified } from '../conditional-get';
import { entityTag } from '../entity-tags';
import { notFound, type HttpProblem } from '../problem';
import { streamText } from '../stream-text';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, reasonField, VersionQuery, versionNumber, wholeNumberParam } from './params';

// Not strict, like every other query: a parameter it does not know (a cache-buster `?_=1`) is ignored.
const ChangesQuery = z
  .object({
    from: versionNumber('from').optional(),
    to: versionNumber('to').optional(),
    limit: wholeNumberParam('limit', { min: 1, max: 1000 }).default(200),
  });
const RebuildBody = z
  .object({
    disabledRules: z
      .array(z.enum(DEDUPE_RULE_NAMES as [string, ...string[]], { error: `disabledRules must be among: ${DEDUPE_RULE_NAMES.join(', ')}` }))
      .optional(),
    reason: reasonField,
  })
  .strict();
type NoQuery = Record<string, never>;
const SummaryQuery = VersionQuery.extend({ since: versionNumber('since').optional() });

/** The 404 of a bundle version (or the latest) that does not exist: the case's own when the case does not exist. */
async function noBundle(db: Queryable, caseId: string, version: number | undefined): Promise<HttpProblem> {
  await requireCaseExists(db, caseId);
  return notFound(version ? `Version ${version} of the case bundle` : 'A case bundle (no pull has completed yet)');
}

/** The specialist's case bundle (a FHIR document), its versions, and the completeness report. */
export function bundleRoutes(deps: AssembleDeps & { readonly config: Pick<Config, 'programTimeZone'> }): AnyRoute[] {
  return [
    defineRoute<undefined, z.infer<typeof VersionQuery>, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/bundle',
      tag: 'bundle',
      summary: 'The case bundle: a FHIR document Bundle (Composition first); ?version=N for an older assembly',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      query: VersionQuery,
      fhir: true,
      responses: {
        200: { description: 'Bundle (document); `ETag` names the version (weak: gzip or not), `Last-Modified` when it was assembled', contentType: 'application/fhir+json' },
        304: { description: '`If-None-Match` named this version: the client has it, no body' },
        404: { description: 'No bundle (yet)' },
        409: { description: 'No `version`, and the latest version was read before a source was removed or pointed at another child: it is not served as the current record until assembled again' },
      },
      handler: async ({ params, query, req, res }) => {
        // The current record, not while it may still hold records of a source changed since.
        if (query.version === undefined) await refuseOutdatedRecords(deps.db, params.id);
        const found = await findBundleVersion(deps.db, params.id, query.version);
        if (!found) throw await noBundle(deps.db, params.id, query.version);
        const { meta } = found;
        const headers = {
          'X-Bundle-Version': String(meta.version), 'Last-Modified': meta.createdAt.toUTCString(), Vary: 'Accept-Encoding', ETag: entityTag(meta.bundleId, true),
        };
        if (answeredNotModified(req, res, headers.ETag, headers)) return undefined;
        // The stored text as is, streamed part by part: the same JSON a parse and re-serialisation
        // would give, without either, and without holding ~100 MB of it (gzip when accepted).
        const text = await found.openText();
        if (!text) throw await noBundle(deps.db, params.id, query.version);
        await streamText(req, res, text.chunks, { contentType: 'application/fhir+json', headers });
        return undefined;
      },
    }),
    defineRoute<undefined, z.infer<typeof SummaryQuery>, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/bundle/summary',
      tag: 'bundle',
      summary: "The case record as a page to read and print: the document's Composition (sections and their narrative), its version and when it was assembled",
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      query: SummaryQuery,
      responses: {
        200: { description: 'HTML page (no script; Content-Security-Policy); with `since=N`, what changed since version N first' },
        404: { description: 'No bundle (yet), or no version `since`' },
        409: { description: 'No `version`, and the latest version is outdated by a source change (as for the bundle)' },
      },
      handler: async ({ params, query, req, res }) => {
        if (query.version === undefined) await refuseOutdatedRecords(deps.db, params.id);
        const head = await readBundleHead(deps.db, params.id, query.version);
        if (!head) throw await noBundle(deps.db, params.id, query.version);
        let changes: BundleChanges | undefined;
        if (query.since !== undefined && query.since !== head.version) {
          const found = await bundleChanges(deps.db, params.id, query.since, head.version, 500);
          if ('missing' in found) throw await noBundle(deps.db, params.id, found.missing);
          changes = found;
        }
        const html = caseRecordHtml({
          caseId: params.id, version: head.version, assembledAt: head.createdAt, bundle: head.bundle, timeZone: deps.config.programTimeZone, ...(changes ? { changes } : {}),
        });
        await streamText(req, res, (async function* () { yield* html; })(), {
          contentType: 'text/html',
          headers: { 'X-Bundle-Version': String(head.version), 'Content-Security-Policy': CASE_RECORD_CSP },
        });
        return undefined;
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/bundle/versions',
      tag: 'bundle',
      summary: 'Every assembled version of the case bundle, newest first: when, why (trigger), totals, sources, and the opinion versions signed on it',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: '`{items}`: the versions, newest first (empty before the first assembly)' }, 404: { description: 'No such case' } },
      handler: async ({ params }) => {
        await requireCaseExists(deps.db, params.id);
        const versions = await listBundleVersions(deps.db, params.id);
        return {
          status: 200,
          body: {
            items: versions.map((v) => bundleVersionView(params.id, v)),
          },
        };
      },
    }),
    defineRoute<undefined, z.infer<typeof ChangesQuery>, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/bundle/changes',
      tag: 'bundle',
      summary: 'What changed in the case record between two bundle versions (default: the latest and the one before): entries added, removed and changed, each with its narrative line',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      query: ChangesQuery,
      responses: { 200: { description: '`{from, to, totals, byType, added, removed, changed, truncated}`' }, 404: { description: 'No such case or version' } },
      handler: async ({ params, query }) => {
        await requireCaseExists(deps.db, params.id);
        const to = query.to ?? (await latestBundleVersion(deps.db, params.id))?.version;
        if (to === undefined) throw await noBundle(deps.db, params.id, undefined);
        const from = query.from ?? to - 1;
        if (from < 1) throw notFound(`A bundle version before version ${to} to compare with`);
        const changes = await bundleChanges(deps.db, params.id, from, to, query.limit);
        if ('missing' in changes) throw await noBundle(deps.db, params.id, changes.missing);
        return { status: 200, body: changes };
      },
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/completeness',
      tag: 'bundle',
      summary: 'Per source and type: pulled, in bundle, merged (into what), left out (why), attachments, unmapped codes',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: 'Completeness report of the latest assembly' } },
      handler: async ({ params }) => {
        const report = await findReport(deps.db, params.id);
        if (!report) {
          await requireCaseExists(deps.db, params.id);
          throw notFound('A completeness report (no assembly yet)');
        }
        return { status: 200, body: { version: report.version, ...(report.report as object) } };
      },
    }),
    defineRoute<z.infer<typeof RebuildBody>, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/bundle/rebuild',
      tag: 'bundle',
      summary: 'Assemble the bundle again from the raw store (new mappings, or a dedupe rule switched off); no new pull',
      roles: ['case_manager', 'admin'],
      params: CaseParams,
      body: RebuildBody,
      responses: { 201: { description: 'New bundle version' } },
      handler: async ({ params, body, principal }) => {
        await requireCaseExists(deps.db, params.id);
        // Each rebuild decides anew: omitted, every rule is on again.
        const result = await assembleCase(deps, params.id, {
          trigger: 'rebuild',
          disabledRules: body.disabledRules ?? [],
          requestedBy: { actor: principal, ...(body.reason !== undefined ? { reason: body.reason } : {}) },
        });
        return {
          status: 201,
          body: { version: result.version, bundleId: result.bundleId, entries: result.entries, totals: result.report.totals },
          headers: { Location: `/api/cases/${params.id}/bundle?version=${result.version}` },
        };
      },
    }),
  ] as unknown as AnyRoute[];
}
