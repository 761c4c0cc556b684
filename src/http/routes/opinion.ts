import { z } from 'zod';
import { OpinionBodySchema, type OpinionBody } from '../../opinion/opinion-schema';
import { getOpinion, getReportPdf, saveOpinionDraft, signOpinion, type OpinionServiceDeps } from '../../opinion/opinion-service';
import { reportTitle } from '../../report/report-title';
import { answeredNotModified } from '../conditional-get';
import { entityTag } from '../entity-tags';
import { revisionTag } from '../if-match';
import { defineRoute, type AnyRoute } from '../route';
import { CaseParams, VersionQuery } from './params';

type NoQuery = Record<string, never>;

/** The opinion as an answer, with the draft's revision as its `ETag` when there is a draft. */
function draftReply(opinion: Awaited<ReturnType<typeof getOpinion>>) {
  return { status: 200, body: opinion, ...(opinion.draft ? { headers: { ETag: revisionTag(opinion.draft.revision) } } : {}) };
}

/** The specialist's opinion: draft, sign (a frozen version with its PDF), read, and the PDF. */
export function opinionRoutes(deps: OpinionServiceDeps): AnyRoute[] {
  return [
    defineRoute<OpinionBody, NoQuery, CaseParams>({
      method: 'put',
      path: '/api/cases/:id/opinion',
      tag: 'opinion',
      summary: 'Write or amend the opinion draft: summary, diagnosis assessment, recommendations, an answer to every family question, follow-up',
      roles: ['specialist'],
      params: CaseParams,
      body: OpinionBodySchema,
      responses: {
        200: { description: 'The opinion (draft and signed versions)' },
        400: { description: 'A field is missing, or a family question has no answer (named)' },
        409: { description: 'The case is not assigned, in review, signed or delivered' },
        412: { description: "If-Match did not match: the draft was saved again since it was read (the answer names its ETag)" },
      },
      handler: async ({ params, body, principal, req }) => draftReply(await saveOpinionDraft(deps, params.id, body, principal, req.headers['if-match'])),
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'post',
      path: '/api/cases/:id/opinion/sign',
      tag: 'opinion',
      summary: 'Sign the draft: a new frozen version with its PDF (version 2+ is `amended`); the case → report_signed; delivery starts',
      roles: ['specialist'],
      params: CaseParams,
      responses: {
        201: { description: 'Signed: the opinion with the new current version' },
        403: { description: 'Another specialist wrote the draft' },
        409: { description: 'Nothing unsigned to sign, the case is not in review, its record is outdated, or the draft was saved for a specialist the case was reassigned away from (`field: specialist`)' },
      },
      handler: async ({ params, principal }) => ({ status: 201, body: await signOpinion(deps, params.id, principal) }),
    }),
    defineRoute<undefined, NoQuery, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/opinion',
      tag: 'opinion',
      summary: 'The opinion: the draft, every signed version (status, signer, PDF size and hashes) and the current one',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      responses: { 200: { description: "The opinion; the draft's revision as the ETag (send it as If-Match with the next PUT)" } },
      handler: async ({ params }) => draftReply(await getOpinion(deps, params.id)),
    }),
    defineRoute<undefined, z.infer<typeof VersionQuery>, CaseParams>({
      method: 'get',
      path: '/api/cases/:id/report.pdf',
      tag: 'opinion',
      summary: 'The signed report as PDF: the latest version, or ?version=N',
      roles: ['specialist', 'case_manager', 'admin'],
      params: CaseParams,
      query: VersionQuery,
      responses: {
        200: { description: "The PDF; `ETag` is its SHA-256 (a signed version's bytes never change)", contentType: 'application/pdf' },
        304: { description: '`If-None-Match` named this PDF: the client has it, no body' },
        404: { description: 'No signed version (yet)' },
      },
      handler: async ({ params, query, req, res }) => {
        const { pdf, version } = await getReportPdf(deps, params.id, query.version);
        const etag = entityTag(version.pdfSha256, false);
        if (answeredNotModified(req, res, etag, { 'X-Report-Version': String(version.version), 'Cache-Control': 'private, no-store' })) return undefined;
        const title = reportTitle({ caseId: params.id, version: version.version, status: version.fhirStatus });
        return {
          status: 200,
          contentType: 'application/pdf',
          body: pdf,
          headers: {
            'Content-Disposition': `inline; filename="second-opinion-${params.id}-v${version.version}.pdf"`,
            'X-Report-Version': String(version.version),
            'X-Report-Title': title,
            'Cache-Control': 'private, no-store',
            ETag: etag,
          },
        };
      },
    }),
  ] as unknown as AnyRoute[];
}
