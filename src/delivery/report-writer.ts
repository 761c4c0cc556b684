/**
 * Writes one report version into the recipient EHR, exactly once, whatever happened before:
 * 1. search the recipient by our identifier for each resource (a previous attempt may have written
 *    it and died before recording the result) and keep what is there. A recipient that ignores the
 *    `identifier` parameter (https://hl7.org/fhir/R4/search.html#errors) answers with every resource
 *    of the type: there the id our records hold is read, else the answer's pages are looked through
 *    (https://hl7.org/fhir/R4/http.html#paging), within {@link LENIENT_SCAN_MAX_PAGES} pages;
 * 2. create only what is missing, each with `If-None-Exist: identifier=…` (a conditional create,
 *    https://hl7.org/fhir/R4/http.html#ccreate), in one transaction Bundle when the server offers
 *    `transaction` (https://hl7.org/fhir/R4/http.html#transaction), else one by one: the report
 *    first, then what points at it. One by one, a DocumentReference or a Communication the
 *    recipient refuses (a permanent 4xx: its rules, its profile validation) is left out and said so
 *    ({@link WriteOutcome}): the report is in the chart already (the caller tells the case managers
 *    when the physician's Communication was refused). A transaction the recipient answers with a
 *    permanent 4xx changed nothing (a transaction is all or nothing): the same conditional creates
 *    are then sent one by one, report first, each refusal handled as above; a transaction whose
 *    answer was lost, or that met a 5xx, a 429 or the network, is thrown as before (it may have
 *    been processed: the caller's in-doubt handling and retries decide).
 * Because every entry is conditional, the client may resend a request whose answer was lost.
 * @packageDocumentation
 */
import type { Bundle, BundleEntry, Communication, DiagnosticReport, DocumentReference, FhirResource, Reference } from 'fhir/r4';
import { carriesIdentifier, parseIdentifierToken, scanPagesForIdentifier, searchIdentifierPage, type IdentifierScan, type IdentifierToken } from '../fhir/identifier-match';
import type { EndpointCapabilities } from '../endpoints/capabilities';
import { DEFAULT_SMART_SCOPE, FhirHttpError, isGoneError, type FhirEndpointClient } from '../fhir';
import { scopeAllows } from '../fhir/scope';
import { logger } from '../log';
import { uuidV5 } from '../cases/fhir-ids';
import type { RemoteIds } from './delivery-repository';
import {
  buildCommunication,
  buildDiagnosticReport,
  buildDocumentReference,
  REPORT_COMMUNICATION_SYSTEM,
  reportIdentifierToken,
  type ReportFacts,
} from './report-resources';

/** What the recipient gets, from its CapabilityStatement. */
export interface WritePlan {
  readonly documentReference: boolean;
  /**
   * The server can update DocumentReferences and the SMART scope granted lets this client: a replaced
   * version's is marked `superseded` (`supersede-document.ts`).
   */
  readonly supersede: boolean;
  /**
   * Set (to the scope granted) when the server can update DocumentReferences but the EHR did not grant
   * this client update on them (SMART v1 `DocumentReference.write` / `.*`, v2 `.u`): no update is
   * sent, the replaced note is left current and the reason says the scope was not granted.
   */
  readonly supersedeNotGranted?: string;
  readonly communication: boolean;
  readonly transaction: boolean;
  /**
   * Every type written declares `conditionalCreate` (https://hl7.org/fhir/R4/http.html#ccreate): a
   * write whose answer was lost may be resent as is. Otherwise the job's next attempt resends it,
   * after finding by identifier what did get there.
   */
  readonly resendable: boolean;
}

const offers = (caps: EndpointCapabilities, type: string, interaction: 'create' | 'update'): boolean => (caps.resources[type]?.interactions ?? []).includes(interaction);

/**
 * The SMART scope this client asks an endpoint for (its registered scope, else the default).
 * Undefined for an endpoint without SMART auth (no scope applies). What it may write there is the
 * scope the EHR grants, which may be narrower (`FhirEndpointClient.grantedScope`): this one only
 * says, before any token is asked for, whether the registration can receive reports at all.
 */
export function requestedScope(endpoint: { readonly authType: string; readonly scope: string | null }): string | undefined {
  return endpoint.authType === 'smart-backend' ? (endpoint.scope ?? DEFAULT_SMART_SCOPE) : undefined;
}

/**
 * Whether the scope this client asks the endpoint for ({@link requestedScope}) lets it create
 * DiagnosticReports: a recipient's registration must. The delivery checks the scope granted again.
 */
export function mayWriteReports(endpoint: { readonly authType: string; readonly scope: string | null }): boolean {
  return scopeAllows(requestedScope(endpoint), 'DiagnosticReport', 'create');
}

/**
 * The DiagnosticReport always; a DocumentReference and a Communication where the server can create
 * them and the SMART scope granted lets this client create them (a CapabilityStatement is
 * server-wide: a token without `DocumentReference.write` would make the server refuse the whole
 * transaction with 403, the report with it); the replaced DocumentReference superseded where the
 * server can update them and the scope granted lets this client (else nothing is sent for it); a
 * transaction where offered.
 * @param scope the SMART scope the EHR granted (the token response's `scope`,
 *   https://hl7.org/fhir/smart-app-launch/backend-services.html#response-5); undefined where no SMART scope applies
 */
export function planWrite(caps: EndpointCapabilities | null, scope?: string): WritePlan {
  if (!caps) return { documentReference: false, supersede: false, communication: false, transaction: false, resendable: false };
  const documentReference = offers(caps, 'DocumentReference', 'create') && scopeAllows(scope, 'DocumentReference', 'create');
  const communication = offers(caps, 'Communication', 'create') && scopeAllows(scope, 'Communication', 'create');
  const written = ['DiagnosticReport', ...(documentReference ? ['DocumentReference'] : []), ...(communication ? ['Communication'] : [])];
  // Marking the replaced note superseded is an update: the token must allow it, as a create must.
  const updatable = documentReference && offers(caps, 'DocumentReference', 'update');
  const updateGranted = scopeAllows(scope, 'DocumentReference', 'update');
  return {
    documentReference,
    supersede: updatable && updateGranted,
    ...(updatable && !updateGranted ? { supersedeNotGranted: scope ?? '' } : {}),
    communication,
    transaction: caps.systemInteractions.includes('transaction'),
    resendable: written.every((type) => caps.resources[type]?.conditionalCreate === true),
  };
}

/** What the writer needs besides the report: who the Communication goes to, what the DocumentReference replaces. */
export interface WriteContext {
  /** The referring physician at the recipient: `Practitioner/{id}`, or a logical reference by NPI. */
  readonly recipient: Reference;
  /** The recipient's id of the previous version's DocumentReference (for `relatesTo: replaces`). */
  readonly previousDocumentId?: string;
  /**
   * Called once, after the look-ups and right before the first create: the last chance to stop a
   * write that is no longer wanted (the case was cancelled, or the report reopened, while the
   * recipient was being searched). It throws to stop; nothing is then written.
   */
  readonly beforeWrite?: () => Promise<void>;
}

type Kind = keyof RemoteIds;

/** Which report version a resource belongs to (its identifier `{case}-v{n}`). */
type ReportKey = Pick<ReportFacts, 'caseId' | 'version'>;

/**
 * What a read-only look-up of an earlier version found at the recipient ({@link findWrittenReport}):
 * - `found`: its DiagnosticReport is there (its ids, the DocumentReference too where found);
 * - `absent`: the recipient answered for everything it holds (it filtered by our identifier, or its
 *   answer was read to its last page) and the report is not there;
 * - `unknown`: a recipient ignoring the identifier could not be looked through to the end (the page
 *   bound, a paging loop, a `next` link off its origin): it may be there. Never taken for `absent`.
 */
export type WrittenReportLookUp =
  | { readonly outcome: 'found'; readonly ids: RemoteIds }
  | { readonly outcome: 'absent' }
  | { readonly outcome: 'unknown'; readonly reason: string };

/** Options of {@link findWrittenReport}. */
interface WrittenReportLookUpOptions {
  /** The ids our records hold of it, if any (read where the recipient ignores the identifier). */
  readonly known?: RemoteIds;
  /**
   * `Patient/{id}` references the report can only be filed under (the patient it was written under,
   * and the records that one was merged into): at a recipient that ignores the identifier, its answer
   * is narrowed by `subject` to each (https://hl7.org/fhir/R4/search.html#reference), a few reports a
   * chart instead of every report it holds. Left out where the chart is not known.
   */
  readonly subjects?: readonly string[];
}

/**
 * Read-only: what of an earlier version (`key`) is at the recipient, found by our identifier as a
 * write's own look-up finds it (a lenient recipient's pages looked through, narrowed to the chart
 * where `subjects` are given). For a delivery whose write started and whose answer was lost: whether
 * its report is in that chart decides a later version's status there, and an `unknown` answer is
 * never "not there" ({@link WrittenReportLookUp}).
 */
export async function findWrittenReport(client: FhirEndpointClient, plan: Pick<WritePlan, 'documentReference'>, key: ReportKey, options: WrittenReportLookUpOptions = {}): Promise<WrittenReportLookUp> {
  const known = options.known ?? {};
  const report = await lookUp(client, 'DiagnosticReport', key, known.DiagnosticReport, options.subjects);
  if (report.outcome !== 'found') return report;
  const ids: RemoteIds = { DiagnosticReport: report.id };
  const note = plan.documentReference ? await lookUp(client, 'DocumentReference', key, known.DocumentReference, options.subjects) : undefined;
  if (note?.outcome === 'found') ids.DocumentReference = note.id;
  return { outcome: 'found', ids };
}

/** How the missing resources were sent: one transaction Bundle, or one conditional create after another. */
export type WriteMode = 'transaction' | 'sequential';

/** What {@link writeReport} wrote, and what the recipient refused of it. */
export interface WriteOutcome {
  /** The recipient's ids of what is in its chart (as far as planned). */
  readonly ids: RemoteIds;
  /** How it was written: `sequential` where the plan has no transaction, or the recipient refused it. */
  readonly mode: WriteMode;
  /**
   * Why the DocumentReference is not there: the recipient refused its one-by-one create for good
   * (a permanent 4xx, e.g. 403 or 422). The report and the Communication were written without it.
   */
  readonly documentRefused?: string;
  /**
   * Why the Communication telling the physician is not there: the recipient refused its one-by-one
   * create for good (a permanent 4xx). The report (and note) are in the chart without it: the
   * physician must be told another way.
   */
  readonly communicationRefused?: string;
  /**
   * Why the resources were created one by one though the plan has a transaction: the recipient
   * refused the transaction for good (a permanent 4xx answer; nothing of it was written).
   */
  readonly transactionRefused?: string;
}

/** A refusal that another attempt would meet again: a permanent 4xx answer (not a network error, 5xx or 429). */
function isRefusal(err: unknown): err is FhirHttpError {
  return err instanceof FhirHttpError && err.permanent && err.status >= 400 && err.status < 500;
}

/** `Type/id` from a Location (`[base]/Type/id/_history/v`, absolute or relative). */
export function idFromLocation(location: string | undefined, type: string): string | undefined {
  if (!location) return undefined;
  const match = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]+)?/?$`).exec(location.split('?')[0] ?? '');
  return match?.[1];
}

function tokenOf(kind: Kind, f: ReportKey): string {
  return kind === 'Communication' ? reportIdentifierToken(f.caseId, f.version, REPORT_COMMUNICATION_SYSTEM) : reportIdentifierToken(f.caseId, f.version);
}

/** Page size of the first look-up: a recipient that filters by identifier answers with ours alone. */
const FIRST_LOOKUP_COUNT = '10';

/**
 * Pages of a lenient recipient's answer (every resource of the type: https://hl7.org/fhir/R4/search.html#errors)
 * looked through at most for ours, {@link LENIENT_SCAN_PAGE_SIZE} a page: its first 1,000. Beyond
 * that the write falls back on its conditional create (https://hl7.org/fhir/R4/http.html#ccreate).
 */
export const LENIENT_SCAN_MAX_PAGES = 20;

/** `_count` of each page a lenient recipient's answer is looked through by (https://hl7.org/fhir/R4/http.html#paging). */
export const LENIENT_SCAN_PAGE_SIZE = 50;

/**
 * The elements that say whether a resource is ours, asked for with `_elements`
 * (https://hl7.org/fhir/R4/search.html#elements) while looking through a lenient answer: a server
 * that honours it leaves the PDFs out of the pages; one that ignores it sends whole resources.
 */
const IDENTIFYING_ELEMENTS: Readonly<Record<Kind, string>> = {
  DiagnosticReport: 'identifier',
  DocumentReference: 'masterIdentifier,identifier',
  Communication: 'identifier',
};

/** One resource's look-up: found (its id), absent, or not known (a lenient answer not read to its end). */
type LookUp = { readonly outcome: 'found'; readonly id: string } | { readonly outcome: 'absent' } | { readonly outcome: 'unknown'; readonly reason: string };

/**
 * Our resource of `kind` at the recipient, found by its identifier (a hit counts only when it
 * carries it: identifier-match.ts). One search; where its first page shows the recipient did not
 * filter by identifier, see {@link findAtLenientRecipient}. A recipient that filtered answered for
 * all it holds: not found there means not there. At a recipient that did not filter, the answer is
 * looked through for the chart the write files under (`subject` = the recipient's Patient, as every
 * resource we write names it): a few reports, not the server's every report (a lenient recipient
 * holding 1,000 of other patients' would otherwise leave the look-up `unknown`, and one ignoring
 * `If-None-Exist` too would get a second copy). For a write: not found (absent or unknown) is created
 * conditionally, `If-None-Exist` the last guard.
 * @param knownId the recipient's id of it in our records, if any (never trusted without a look)
 */
async function findExisting(client: FhirEndpointClient, kind: Kind, facts: ReportKey & Pick<ReportFacts, 'patientId'>, knownId?: string): Promise<string | undefined> {
  const found = await lookUp(client, kind, facts, knownId, [`Patient/${facts.patientId}`]);
  return found.outcome === 'found' ? found.id : undefined;
}

/** {@link findExisting}, saying whether "not found" is known to be "not there" ({@link LookUp}). */
async function lookUp(client: FhirEndpointClient, kind: Kind, facts: ReportKey, knownId?: string, subjects?: readonly string[]): Promise<LookUp> {
  const wanted = parseIdentifierToken(tokenOf(kind, facts));
  const first = await searchIdentifierPage(client, kind, wanted, { _count: FIRST_LOOKUP_COUNT });
  const [hit] = first.hits;
  if (hit?.id) return { outcome: 'found', id: hit.id };
  if (!first.unfiltered) return { outcome: 'absent' };
  return findAtLenientRecipient(client, kind, wanted, facts, knownId, subjects);
}

/**
 * Our resource at a recipient that ignored the identifier and answered with every resource of the
 * type (https://hl7.org/fhir/R4/search.html#errors), ours perhaps on a later page: the one our
 * records name, read, when it is still there and carries our identifier; else the first that does
 * on the answer's pages (https://hl7.org/fhir/R4/http.html#paging), {@link LENIENT_SCAN_MAX_PAGES}
 * at most — each chart's answer (`subject`) in turn where `subjects` are given. `absent` only when
 * every answer was read to its last page; one stopped before is `unknown`.
 */
async function findAtLenientRecipient(client: FhirEndpointClient, kind: Kind, wanted: IdentifierToken, facts: ReportKey, knownId: string | undefined, subjects?: readonly string[]): Promise<LookUp> {
  const read = knownId === undefined ? undefined : await readIfOurs(client, kind, knownId, wanted);
  if (read !== undefined) return { outcome: 'found', id: read };
  const narrowing: readonly (string | undefined)[] = subjects && subjects.length > 0 ? subjects : [undefined];
  let unknown: string | undefined;
  for (const subject of narrowing) {
    const scan = await scanPagesForIdentifier(client, kind, wanted, {
      maxPages: LENIENT_SCAN_MAX_PAGES,
      params: { _count: String(LENIENT_SCAN_PAGE_SIZE), _elements: IDENTIFYING_ELEMENTS[kind], ...(subject !== undefined ? { subject } : {}) },
    });
    if (scan.outcome === 'found' && scan.resource.id) return { outcome: 'found', id: scan.resource.id };
    if (scan.outcome === 'stopped') {
      warnLookupStopped(client, kind, facts, scan);
      unknown ??= `the recipient ignores the identifier search and its answer${subject !== undefined ? ` for ${subject}` : ''} could not be read to its end (${scan.reason} after ${scan.pages} pages)`;
    }
  }
  return unknown !== undefined ? { outcome: 'unknown', reason: unknown } : { outcome: 'absent' };
}

/**
 * `GET [base]/[kind]/[id]` (https://hl7.org/fhir/R4/http.html#read): its id when the resource carries
 * our identifier; undefined when it does not, or is gone (404, 410).
 */
async function readIfOurs(client: FhirEndpointClient, kind: Kind, id: string, wanted: IdentifierToken): Promise<string | undefined> {
  try {
    const resource = await client.read(kind, id);
    return carriesIdentifier(resource, wanted) ? (resource.id ?? id) : undefined;
  } catch (err) {
    if (isGoneError(err)) return undefined;
    throw err;
  }
}

/** Says (ids and counts only: no PHI) that a lenient recipient was not looked through to its end. */
function warnLookupStopped(client: FhirEndpointClient, kind: Kind, facts: ReportKey, scan: Extract<IdentifierScan<FhirResource>, { outcome: 'stopped' }>): void {
  logger.warn('report look-up at a lenient recipient stopped before its last page: the write relies on its conditional create', {
    endpointId: client.endpoint.id,
    caseId: facts.caseId,
    version: facts.version,
    resourceType: kind,
    pages: scan.pages,
    reason: scan.reason,
  });
}

/**
 * Writes what is missing and returns the recipient's ids of all three (as far as planned), how they
 * were written, and the refusals of the DocumentReference or the Communication one by one, and of
 * the transaction, when the recipient refused them for good ({@link WriteOutcome}).
 * `onProgress` is called with ids as soon as they are known — found by the look-up, created one by
 * one, or answered by the transaction (https://hl7.org/fhir/R4/http.html#transaction-response) — so
 * what is in the recipient's chart is on record before anything after the write can fail (marking
 * the replaced note superseded, the caller's final transaction). A later version's status and the
 * note it `replaces` are decided from that record (`statusAtRecipient`): an amendment in the chart
 * but not on record would have the next version replace an older note and leave this one current.
 */
export async function writeReport(
  client: FhirEndpointClient,
  plan: WritePlan,
  facts: ReportFacts,
  known: RemoteIds,
  ctx: WriteContext,
  onProgress: (ids: RemoteIds, mode: WriteMode) => Promise<void>,
): Promise<WriteOutcome> {
  const kinds: Kind[] = ['DiagnosticReport', ...(plan.documentReference ? (['DocumentReference'] as const) : []), ...(plan.communication ? (['Communication'] as const) : [])];
  const ids: RemoteIds = { ...known };
  // 1. What is already there (found by identifier, never trusted from our own records alone).
  await Promise.all(
    kinds.map(async (kind) => {
      const found = await findExisting(client, kind, facts, known[kind]);
      if (found) ids[kind] = found;
      else delete ids[kind];
    }),
  );
  const missing = kinds.filter((k) => !ids[k]);
  let mode: WriteMode = plan.transaction ? 'transaction' : 'sequential';
  if (Object.keys(ids).length > 0) await onProgress(ids, mode);
  if (missing.length === 0) return { ids, mode };
  await ctx.beforeWrite?.();

  // Entry fullUrls: one per resource type (the DiagnosticReport and DocumentReference share an identifier).
  const urnOf = (kind: Kind): string => `urn:uuid:${uuidV5(`${kind}|${tokenOf(kind, facts)}`)}`;
  const reportUrn = urnOf('DiagnosticReport');
  const reportRef = (): string => (ids.DiagnosticReport ? `DiagnosticReport/${ids.DiagnosticReport}` : reportUrn);
  const resourceOf = (kind: Kind): FhirResource => {
    switch (kind) {
      case 'DiagnosticReport':
        return buildDiagnosticReport(facts);
      case 'DocumentReference':
        return buildDocumentReference(facts, reportRef(), ctx.previousDocumentId);
      case 'Communication':
        return buildCommunication(facts, reportRef(), ctx.recipient);
    }
  };

  let transactionRefused: string | undefined;
  let refused: Refusals = {};
  if (plan.transaction) {
    const entries: BundleEntry[] = missing.map((kind) => ({
      fullUrl: urnOf(kind),
      resource: resourceOf(kind),
      request: { method: 'POST', url: kind, ifNoneExist: `identifier=${tokenOf(kind, facts)}` },
    }));
    const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: entries };
    // Resent inside the request only where every create is conditional AND honoured as such; else a
    // retry of the job searches by identifier first (a server ignoring If-None-Exist would duplicate).
    // Only a permanent 4xx answer is a refusal: a lost answer, a 5xx or a 429 may hide a processed
    // transaction and is thrown (the caller's in-doubt handling and retries decide).
    const response = await client.transaction(bundle, { idempotent: plan.resendable }).catch((err: unknown) => {
      if (!isRefusal(err)) throw err;
      transactionRefused = `the recipient refused the transaction: ${err.message}`;
      logger.warn('the recipient refused the report\'s transaction (nothing of it was written): its resources are created one by one', {
        endpointId: client.endpoint.id,
        caseId: facts.caseId,
        version: facts.version,
        status: err.status,
      });
      return undefined;
    });
    if (response) {
      missing.forEach((kind, i) => {
        const entry = response.entry?.[i];
        const id = entry?.resource?.resourceType === kind ? entry.resource.id : idFromLocation(entry?.response?.location, kind);
        if (id) ids[kind] = id;
      });
    } else {
      // A FHIR transaction is all or nothing (https://hl7.org/fhir/R4/http.html#transaction): the
      // refused one changed nothing, so the same conditional creates go one by one, report first.
      mode = 'sequential';
      refused = await createOneByOne(client, plan, facts, missing, ids, resourceOf, (progress) => onProgress(progress, mode));
    }
  } else {
    refused = await createOneByOne(client, plan, facts, missing, ids, resourceOf, (progress) => onProgress(progress, mode));
  }
  // A server that answered without ids: find them by identifier.
  for (const kind of kinds) {
    if (!ids[kind] && (kind === 'DiagnosticReport' || refused[kind] === undefined)) {
      const found = await findExisting(client, kind, facts);
      if (found) ids[kind] = found;
    }
  }
  // On record at once: a transaction's ids were recorded nowhere yet.
  await onProgress(ids, mode);
  return {
    ids,
    mode,
    ...(refused.DocumentReference !== undefined ? { documentRefused: refused.DocumentReference } : {}),
    ...(refused.Communication !== undefined ? { communicationRefused: refused.Communication } : {}),
    ...(transactionRefused !== undefined ? { transactionRefused } : {}),
  };
}

/** Why the recipient refused the one-by-one create of a resource it is written without. */
type Refusals = Partial<Record<Exclude<Kind, 'DiagnosticReport'>, string>>;

/**
 * One conditional create after another (`If-None-Exist: identifier=…`, resent inside the request only
 * where the plan says it is `resendable`), in `missing`'s order: the report first, then what points
 * at it. The report in the chart, a DocumentReference or Communication the recipient refuses for good
 * (a permanent 4xx) is left out and its refusal returned; anything else, and any refusal of the
 * report itself, is thrown. Each id is passed to `onProgress` as soon as it is known.
 */
async function createOneByOne(
  client: FhirEndpointClient,
  plan: WritePlan,
  facts: ReportFacts,
  missing: readonly Kind[],
  ids: RemoteIds,
  resourceOf: (kind: Kind) => FhirResource,
  onProgress: (ids: RemoteIds) => Promise<void>,
): Promise<Refusals> {
  const refused: Refusals = {};
  for (const kind of missing) {
    const resource = resourceOf(kind) as DiagnosticReport | DocumentReference | Communication;
    const result = await client.createConditional(resource, `identifier=${tokenOf(kind, facts)}`, { idempotent: plan.resendable }).catch((err: unknown) => {
      // The report is in the chart (written first): a refused note or message is left out, and said so.
      if (kind === 'DiagnosticReport' || !isRefusal(err)) throw err;
      refused[kind] = `the recipient refused it: ${err.message}`;
      logger.warn(
        kind === 'DocumentReference'
          ? 'the recipient refused the report\'s DocumentReference: the report and its Communication go without it'
          : 'the recipient refused the Communication telling the physician: the report is in the chart, the case managers are told',
        { endpointId: client.endpoint.id, caseId: facts.caseId, version: facts.version, resourceType: kind, status: err.status },
      );
      return undefined;
    });
    if (!result) continue;
    const id = result.resource?.id ?? idFromLocation(result.location, kind);
    if (id) ids[kind] = id;
    else if (kind === 'DiagnosticReport') ids[kind] = await reportIdAfterBareAnswer(client, facts);
    await onProgress(ids);
  }
  return refused;
}

/**
 * The id of the report just created one by one when the recipient's answer named none: a server may
 * answer a conditional create with a bare `200 OK` (one match already there) or `201` with neither
 * body nor `Location` (https://hl7.org/fhir/R4/http.html#ccreate). What goes next points at the
 * report: its `urn:uuid:` fullUrl resolves only inside a transaction Bundle
 * (https://hl7.org/fhir/R4/bundle.html#references), so sent alone it would point at nothing. Found by
 * identifier; not found (yet), the attempt stops before the note and message, and the next one finds
 * the report first (step 1 of {@link writeReport}).
 * @throws Error (a passing failure: the job retries) when the report cannot be found
 */
async function reportIdAfterBareAnswer(client: FhirEndpointClient, facts: ReportFacts): Promise<string> {
  const found = await findExisting(client, 'DiagnosticReport', facts);
  if (found) return found;
  throw new Error('the recipient took the report without naming its id, and a search by its identifier does not find it yet: its note and message wait for the next attempt, which looks for it first');
}
