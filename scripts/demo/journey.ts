/**
 * The fixture child's whole journey through the public API, as the demo shows it and the
 * end-to-end benchmark times it: endpoints, intake, sources, pull, completeness, then the review
 * and delivery steps. Each step reports through `say` and is timed.
 */
import { fixturePatientId, fixturePatientIdentifier, referredIntake } from '../../src/fixtures/fixture-child-intake';
import type { SandboxWorld } from '../../src/sandbox/sandbox-world';
import { waitFor, type ApiClient } from './api-client';
import { ProgressBars, type SourceProgressLine } from './progress-bars';
import { runReviewAndDelivery } from './review-steps';

export interface JourneyContext {
  readonly api: ApiClient;
  readonly world: SandboxWorld;
  readonly tokens: { admin: string; caseManager: string; specialist: string };
  /** The specialist token's subject. */
  readonly specialistSub: string;
  readonly say: (text: string) => void;
  /** Draw live progress bars (the demo) or not (the benchmark). */
  readonly progress: boolean;
  /** Where the results are saved. */
  readonly outDir: string;
}

export interface JourneyResult {
  readonly caseId: string;
  /** Milliseconds from the intake POST to the report acknowledged by the referring EHR. */
  readonly intakeToDeliveredMs: number;
  readonly resourcesPulled: number;
}

/** SMART scopes for the referring EHR: read to find the patient, write for the report. */
const RECIPIENT_SCOPE = 'system/*.read system/DiagnosticReport.write system/DocumentReference.write system/Communication.write';

interface PullView {
  state: string;
  totals: { resources: number; pages: number; attachmentsFound: number; attachmentsFetched: number; retries: number };
  sources: { endpointName: string | null; state: string; resourceTypes: { state: string; pages: number; resources: number; retries: number; attachments: { found: number; fetched: number } }[] }[];
}

interface Completeness {
  totals: { pulled: number; inBundle: number; merged: number; leftOut: number; balanced: boolean };
  sources: { name: string; resourceTypes: { pulled: number; inBundle: number; merged: unknown[]; leftOut: unknown[] }[] }[];
}

function progressLines(pull: PullView): SourceProgressLine[] {
  return pull.sources.map((s) => ({
    name: s.endpointName ?? 'source',
    state: s.state,
    resources: s.resourceTypes.reduce((n, t) => n + t.resources, 0),
    pages: s.resourceTypes.reduce((n, t) => n + t.pages, 0),
    queriesDone: s.resourceTypes.filter((t) => t.state === 'complete' || t.state === 'failed').length,
    queries: s.resourceTypes.length,
    attachmentsFetched: s.resourceTypes.reduce((n, t) => n + t.attachments.fetched, 0),
    attachmentsFound: s.resourceTypes.reduce((n, t) => n + t.attachments.found, 0),
    retries: s.resourceTypes.reduce((n, t) => n + t.retries, 0),
  }));
}

/** Registers the world's three servers as endpoints (SMART Backend Services); ids by server name. */
export async function registerWorldEndpoints(ctx: JourneyContext): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const server of [ctx.world.careTeamA, ctx.world.careTeamB, ctx.world.referringEhr]) {
    const created = await ctx.api.json<{ id: string }>('POST', '/api/endpoints', ctx.tokens.admin, {
      name: server.name,
      baseUrl: server.baseUrl,
      auth: {
        type: 'smart-backend',
        clientId: ctx.world.client.clientId,
        privateKeyJwk: ctx.world.client.privateJwk,
        // The referring EHR is where the report is written: it needs write scopes.
        ...(server === ctx.world.referringEhr ? { scope: RECIPIENT_SCOPE } : {}),
      },
      allowInsecureHttp: true,
    });
    ids[server.name] = created.id;
  }
  ctx.say('3. Registered 3 endpoints (capabilities read from each /metadata; keys sealed at rest).');
  return ids;
}

/** Intake to delivered report for the fixture child. */
export async function runJourney(ctx: JourneyContext, endpointIds: Readonly<Record<string, string>>): Promise<JourneyResult> {
  const { api, tokens, say } = ctx;
  const started = performance.now();
  const opened = await api.json<{ id: string; eligibility: { eligible: boolean }; quote: { total: number } }>('POST', '/api/cases', tokens.caseManager, referredIntake());
  const caseId = opened.id;
  say(`4. Opened case ${caseId} for the fixture child: eligible=${opened.eligibility.eligible}, quote $${opened.quote.total}.`);

  const identifierB = fixturePatientIdentifier('care-team-b');
  await api.json('POST', `/api/cases/${caseId}/sources`, tokens.caseManager, { endpointId: endpointIds['care-team-a'], patient: { id: fixturePatientId('care-team-a') } });
  await api.json('POST', `/api/cases/${caseId}/sources`, tokens.caseManager, {
    endpointId: endpointIds['care-team-b'],
    patient: identifierB ? { identifier: identifierB } : { match: true },
  });
  say('5. Added both care teams as sources (team A by patient id, team B by MRN). Pulling:');

  const { pullId } = await api.json<{ pullId: string }>('POST', `/api/cases/${caseId}/pulls`, tokens.caseManager, {});
  const bars = ctx.progress ? new ProgressBars() : undefined;
  const pull = await waitFor(
    'the record pull',
    async () => {
      const view = await api.json<PullView>('GET', `/api/cases/${caseId}/pulls/${pullId}`, tokens.caseManager);
      bars?.update(progressLines(view));
      return view;
    },
    (view) => ['complete', 'partial', 'failed'].includes(view.state),
  );
  say(`   pull ${pull.state}: ${pull.totals.resources} resources in ${pull.totals.pages} pages, ${pull.totals.attachmentsFetched}/${pull.totals.attachmentsFound} attachments, ${pull.totals.retries} retries.`);
  if (pull.state !== 'complete') throw new Error(`the pull ended ${pull.state}`);

  // records_complete comes once the bundle is assembled.
  await waitFor('the case bundle', () => api.json<{ status: string }>('GET', `/api/cases/${caseId}`, tokens.caseManager), (c) => c.status === 'records_complete');
  const completeness = await api.json<Completeness>('GET', `/api/cases/${caseId}/completeness`, tokens.caseManager);
  say('6. Completeness (pulled = in bundle + merged + left out):');
  for (const source of completeness.sources) {
    const t = source.resourceTypes;
    say(
      `   ${source.name.padEnd(14)} pulled ${t.reduce((n, x) => n + x.pulled, 0)}, in bundle ${t.reduce((n, x) => n + x.inBundle, 0)}, ` +
        `merged ${t.reduce((n, x) => n + x.merged.length, 0)}, left out ${t.reduce((n, x) => n + x.leftOut.length, 0)}`,
    );
  }
  const totals = completeness.totals;
  say(`   all sources    pulled ${totals.pulled} = ${totals.inBundle} in bundle + ${totals.merged} merged + ${totals.leftOut} left out: ${totals.balanced ? 'balanced' : 'NOT BALANCED'}`);
  if (!totals.balanced) throw new Error('the completeness report does not balance');

  await runReviewAndDelivery({ api, world: ctx.world, caseId, tokens, specialistSub: ctx.specialistSub, say, endpointIds, outDir: ctx.outDir });
  return { caseId, intakeToDeliveredMs: performance.now() - started, resourcesPulled: pull.totals.resources };
}
