/**
 * The opinion: a specialist's draft (`PUT`), signed into frozen, numbered versions (`sign`), each
 * with its PDF. Signing moves the case `in_review → report_signed` and queues a delivery to every
 * recipient; an amendment (a new draft, then sign) is version N+1, FHIR status `amended`, whether
 * the case was still `report_signed` (it goes back to `in_review` on the PUT) or already `delivered`
 * (it stays delivered, and the amended version is delivered too).
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config';
import { transitionCase, type CaseServiceDeps } from '../cases/case-service';
import type { Intake } from '../cases/intake-schema';
import type { CaseStatus } from '../cases/lifecycle';
import { findCase, insertCaseEvent, type CaseRecord } from '../db/case-repository';
import type { Queryable } from '../db/database';
import { createDeliveries, supersedeOlderDeliveries } from '../delivery/delivery-repository';
import { listRecipients } from '../delivery/recipient-repository';
import type { Principal } from '../http/auth';
import { ifMatchAllows, preconditionFailed, revisionTag } from '../http/if-match';
import { conflict, HttpProblem, notFound } from '../http/problem';
import { logger } from '../log';
import { enqueueAfterCommit } from '../util/enqueue-after-commit';
import { recordEvent, type WorkDispatch } from '../notify/events';
import { latestBundleVersion, type BundleVersionSummary } from '../assembly/bundle-versions';
import { refuseOutdatedRecords } from '../assembly/source-changes';
import { processPdfThread } from '../report/pdf-thread';
import type { ReportInput } from '../report/report-pdf';
import { reportTitle } from '../report/report-title';
import type { ReportFontPaths } from '../report/report-fonts';
import { matchAnswers } from './answers';
import { resolveSpecialist } from './assigned-specialist';
import { findDraft, findVersion, insertVersion, listVersions, markDraftSigned, readVersionPdf, upsertDraft, type StoredOpinion, type VersionRow } from './opinion-repository';
import type { OpinionBody, SpecialistIdentity } from './opinion-schema';

/** What the opinion service needs: the case service's deps, the work dispatch, the report fonts. */
export interface OpinionServiceDeps extends CaseServiceDeps {
  readonly config: Pick<Config, 'programTimeZone'>;
  /** Report fonts (default assets/fonts). */
  readonly reportFonts?: ReportFontPaths;
  readonly dispatch: WorkDispatch;
}

/**
 * Statuses in which the specialist may write (or amend) the opinion. While the case awaits the
 * family's information the draft may still be saved (the status stays: the SLA stays paused); signing
 * waits for the review to resume.
 */
const WRITABLE: readonly CaseStatus[] = ['assigned', 'in_review', 'awaiting_information', 'report_signed', 'delivered'];

const now = (deps: OpinionServiceDeps): Date => (deps.now ?? (() => new Date()))();

async function requireCase(db: Queryable, id: string, forUpdate = false): Promise<CaseRecord> {
  const record = await findCase(db, id, forUpdate);
  if (!record) throw notFound(`Case ${id}`);
  return record;
}

/**
 * Saves the draft; `assigned → in_review` on the first write, `report_signed → in_review` for an
 * amendment. With `ifMatch` (the `If-Match` header: the draft's ETag as read), refused with 412 when
 * the draft was saved again since (a second tab, another device).
 */
export async function saveOpinionDraft(deps: OpinionServiceDeps, caseId: string, body: OpinionBody, actor: Principal, ifMatch?: string | string[]) {
  const at = now(deps);
  await deps.db.transaction(async (tx) => {
    const record = await requireCase(tx, caseId, true);
    // The case row lock serialises saves of the draft: the revision read here is the one overwritten.
    const saved = ifMatch === undefined ? undefined : await findDraft(tx, caseId);
    if (!ifMatchAllows(ifMatch, saved?.revision)) {
      throw preconditionFailed(
        saved ? `The draft was saved again since it was read (now ${revisionTag(saved.revision)}): read it, merge, and save with its ETag.` : 'There is no draft to match yet.',
      );
    }
    const status = record.status as CaseStatus;
    if (!WRITABLE.includes(status)) {
      throw conflict(`The opinion can be written when the case is ${WRITABLE.join(', ')}; it is ${status}.`, { currentStatus: status });
    }
    const intake = record.intake as Intake;
    const answers = matchAnswers(intake.questions, body.answers);
    // The assigned specialist's row locked too: not saved for one deactivated meanwhile.
    const specialist = await resolveSpecialist(tx, caseId, actor, body.specialist, true);
    const content: StoredOpinion = {
      summary: body.summary,
      diagnosisAssessment: body.diagnosisAssessment,
      recommendations: body.recommendations,
      answers,
      followUp: body.followUp,
    };
    await upsertDraft(tx, caseId, content, specialist, at);
    if (status === 'assigned' || status === 'report_signed') {
      await transitionCase(deps, tx, {
        id: caseId,
        to: 'in_review',
        reason: status === 'report_signed' ? 'The specialist is amending the signed opinion before delivery.' : 'The specialist started the opinion.',
        actor,
        now: at,
      });
    } else {
      await insertCaseEvent(tx, { caseId, type: 'opinion_draft_saved', actorSub: actor.sub, actorRole: 'specialist', at });
    }
  });
  logger.info('opinion draft saved', { caseId });
  return getOpinion(deps, caseId);
}

function reportInput(
  deps: OpinionServiceDeps, record: CaseRecord, content: StoredOpinion, specialist: SpecialistIdentity, version: number, signedAt: Date, records: BundleVersionSummary | undefined,
): ReportInput {
  const intake = record.intake as Intake;
  const name = [...intake.patient.name.given, intake.patient.name.family].join(' ');
  return {
    caseId: record.id,
    version,
    status: version > 1 ? 'amended' : 'final',
    patient: { name, birthDate: intake.patient.birthDate, ...(intake.patient.sex ? { sex: intake.patient.sex } : {}) },
    referringPhysician: [intake.referringPhysician.name, intake.referringPhysician.organization].filter(Boolean).join(', '),
    diagnosis: intake.diagnosis.text,
    ...content,
    specialist: { name: specialist.name, ...(specialist.npi ? { npi: specialist.npi } : {}) },
    signedAt,
    timeZone: deps.config.programTimeZone,
    ...(records ? { records: { bundleVersion: records.version, assembledAt: records.createdAt, sources: records.sources } } : {}),
  };
}

/**
 * 409 when the draft was written for a specialist the case is no longer assigned to (reassigned
 * since it was saved: the report would carry the previous specialist's name and NPI), or when the
 * assigned specialist was deactivated; 403 when the signer may not write for the current assignment
 * ({@link resolveSpecialist}). `forShare`: the assigned specialist's row stays locked until the
 * transaction ends (see {@link resolveSpecialist}).
 */
async function refuseDraftOfAnotherAssignment(db: Queryable, caseId: string, actor: Principal, draftSpecialist: SpecialistIdentity, forShare = false): Promise<void> {
  const current = await resolveSpecialist(db, caseId, actor, undefined, forShare);
  // An NPI without a name given comes from the directory's current assignment only.
  if (current.npi === undefined || current.npi === draftSpecialist.npi) return;
  throw conflict(
    `The case was assigned to ${current.name} since this draft was saved as ${draftSpecialist.name}'s: save it again (PUT /opinion) as the case's specialist, then sign.`,
    { field: 'specialist', draftSpecialistNpi: draftSpecialist.npi ?? null, assignedSpecialistNpi: current.npi },
  );
}

/**
 * Freezes the draft as the next version with its PDF; queues a delivery per recipient.
 * @throws HttpProblem 409 when there is no unsigned draft, the case is not in review, the draft was
 *   saved for a specialist the case is no longer assigned to or saved again while signing, or the
 *   assigned specialist was deactivated; 403 when another specialist wrote it
 */
export async function signOpinion(deps: OpinionServiceDeps, caseId: string, actor: Principal) {
  const signedAt = now(deps);
  const record = await requireCase(deps.db, caseId);
  const draft = await findDraft(deps.db, caseId);
  if (!draft || draft.signedVersion !== null) throw conflict('There is no unsigned opinion to sign: write it with PUT /opinion first.');
  if (draft.authorSub !== actor.sub) throw new HttpProblem(403, 'Forbidden', 'Only the specialist who wrote the opinion may sign it.');
  const status = record.status as CaseStatus;
  if (status !== 'in_review' && status !== 'delivered') {
    throw conflict(`An opinion is signed while the case is in_review (or delivered, for an amendment); it is ${status}.`, { currentStatus: status });
  }
  const version = ((await findVersion(deps.db, caseId))?.version ?? 0) + 1;
  // The case record the opinion rests on: the bundle version current now (printed on the report).
  // Not one that may still hold records of a source removed since, or of another child.
  await refuseOutdatedRecords(deps.db, caseId);
  const records = await latestBundleVersion(deps.db, caseId);
  await refuseDraftOfAnotherAssignment(deps.db, caseId, actor, draft.specialist);
  // Rendered in the PDF thread: the event loop keeps serving meanwhile.
  const pdf = await processPdfThread.renderReport(reportInput(deps, record, draft.content, draft.specialist, version, signedAt, records), deps.reportFonts);
  const pdfSha1Base64 = createHash('sha1').update(pdf).digest('base64');
  const pdfSha256 = createHash('sha256').update(pdf).digest('hex');
  const deliveryIds = await deps.db.transaction(async (tx) => {
    const locked = await requireCase(tx, caseId, true);
    const current = await findDraft(tx, caseId, true);
    // The draft's revision, bumped by every save, not its `updatedAt`: a save from another tab within
    // the same millisecond would otherwise be marked signed while the version holds the text before it.
    // Same revision: the draft read under the lock is the one the PDF was rendered from.
    if (!current || current.signedVersion !== null || current.revision !== draft.revision || locked.status !== record.status) {
      throw conflict('The opinion or the case changed while signing; read it again and retry.');
    }
    // A pull or rebuild finished while the report was rendered: the report would name a record that is
    // no longer the case's current one.
    const recordsNow = await latestBundleVersion(tx, caseId);
    if (recordsNow?.version !== records?.version) {
      throw conflict(`The case records were assembled again (bundle version ${recordsNow?.version ?? 'none'}) while signing; review them and sign again.`, {
        bundleVersion: recordsNow?.version ?? null,
      });
    }
    await refuseOutdatedRecords(tx, caseId);
    // Under the case row lock, which reassignments take too: not reassigned while the report was rendered.
    // The specialist's row locked `FOR SHARE` until the commit: not deactivated meanwhile either.
    await refuseDraftOfAnotherAssignment(tx, caseId, actor, current.specialist, true);
    await insertVersion(tx, {
      caseId,
      version,
      content: current.content,
      specialist: current.specialist,
      signedBy: actor.sub,
      signedAt,
      fhirStatus: version > 1 ? 'amended' : 'final',
      pdf,
      pdfSha1Base64,
      pdfSha256,
      bundleVersion: records?.version ?? null,
    });
    await markDraftSigned(tx, caseId, version);
    if (status === 'in_review') {
      await transitionCase(deps, tx, { id: caseId, to: 'report_signed', reason: `Opinion version ${version} signed.`, actor, now: signedAt, data: { version } });
    } else {
      await insertCaseEvent(tx, { caseId, type: 'opinion_amended', actorSub: actor.sub, actorRole: 'specialist', at: signedAt, data: { version } });
    }
    const recipients = await listRecipients(tx, caseId);
    const ids = await createDeliveries(tx, caseId, version, recipients.map((r) => r.id));
    // An older version not sent yet is not sent at all: landing after this one, it would stand as the current report.
    // One whose write is on its way (`sending`, write started) finishes: this version waits for it and amends it;
    // one whose answer was lost is looked up at the recipient before this version's status there is decided.
    await supersedeOlderDeliveries(tx, caseId, version, signedAt);
    await recordEvent(tx, 'opinion.signed', caseId, { caseId, version, status: version > 1 ? 'amended' : 'final', recipients: recipients.length });
    return ids;
  });
  logger.info('opinion signed', { caseId, version, count: deliveryIds.length });
  // Committed: Redis (down, or never reached since start) must not hang the answer nor turn it into a 500.
  // Lost jobs come back from PostgreSQL: deliveries still `queued` by the notify worker's stale sweep
  // (`staleDeliveries`), the outbox by its `NOTIFY_POLL_MS` drain.
  await enqueueAfterCommit(() => Promise.all([...deliveryIds.map((id) => deps.dispatch.deliver(id, 0)), deps.dispatch.notify()]), {
    what: 'opinion deliveries',
    sweep: 'the notify stale sweep',
    ids: { caseId, version, count: deliveryIds.length },
  });
  return getOpinion(deps, caseId);
}

function versionView(v: VersionRow) {
  return {
    version: v.version,
    status: v.fhirStatus,
    signedAt: v.signedAt.toISOString(),
    signedBy: v.signedBy,
    specialist: v.specialist,
    title: reportTitle({ caseId: v.caseId, version: v.version, status: v.fhirStatus }),
    pdf: { url: `/api/cases/${v.caseId}/report.pdf?version=${v.version}`, size: v.pdfBytes, sha1: v.pdfSha1Base64, sha256: v.pdfSha256 },
    // The case record this version rests on (null: signed before any assembly, or before this was kept).
    records: v.bundleVersion === null ? null : { bundleVersion: v.bundleVersion, url: `/api/cases/${v.caseId}/bundle?version=${v.bundleVersion}` },
    content: v.content,
  };
}

/** The draft (with whether it has unsigned changes), every signed version, and the current one. */
export async function getOpinion(deps: Pick<OpinionServiceDeps, 'db'>, caseId: string) {
  await requireCase(deps.db, caseId);
  const [draft, versions] = await Promise.all([findDraft(deps.db, caseId), listVersions(deps.db, caseId)]);
  const views = versions.map(versionView);
  return {
    caseId,
    draft: draft
      ? {
          content: draft.content,
          specialist: draft.specialist,
          updatedAt: draft.updatedAt.toISOString(),
          signed: draft.signedVersion !== null,
          signedVersion: draft.signedVersion,
          revision: draft.revision,
        }
      : null,
    current: views[views.length - 1] ?? null,
    versions: views,
  };
}

/** The PDF of a signed version (the latest when `version` is omitted). */
export async function getReportPdf(deps: Pick<OpinionServiceDeps, 'db'>, caseId: string, version?: number): Promise<{ pdf: Buffer; version: VersionRow }> {
  await requireCase(deps.db, caseId);
  const row = await findVersion(deps.db, caseId, version);
  if (!row) throw notFound(version === undefined ? `A signed opinion of case ${caseId}` : `Version ${version} of the opinion`);
  const pdf = await readVersionPdf(deps.db, caseId, row.version);
  if (!pdf) throw notFound(`Version ${row.version} of the opinion`);
  return { pdf, version: row };
}
