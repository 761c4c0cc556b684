/**
 * The demo after the pull: the family's uploads (a small DICOM study of a study the care team
 * also holds, and a PDF) through a per-case upload token, the radiology add-on approved and paid,
 * a specialist matched, the opinion signed, and its delivery into the referring EHR.
 */
import fs from 'node:fs';
import path from 'node:path';
import { committedFixturesDir, fixtureManifest, fixturePatientIdentifier, referredIntake } from '../../src/fixtures/fixture-child-intake';
import { syntheticDicom } from '../../src/imaging/synthetic-dicom';
import { reportIdentifierToken } from '../../src/delivery/report-resources';
import type { SandboxWorld } from '../../src/sandbox/sandbox-world';
import { waitFor, type ApiClient } from './api-client';

export interface ReviewStepsContext {
  readonly api: ApiClient;
  readonly world: SandboxWorld;
  readonly caseId: string;
  readonly tokens: { admin: string; caseManager: string; specialist: string };
  /** The specialist token's subject (the directory entry is bound to it). */
  readonly specialistSub: string;
  readonly endpointIds: Readonly<Record<string, string>>;
  readonly say: (text: string) => void;
  /** Where the bundle, the PDFs and the delivered DiagnosticReport are written for a look afterwards. */
  readonly outDir: string;
}

/** The bone-age study care team A holds (fixtures): the family's CD of it merges with the pulled one. */
const BONE_AGE_STUDY_UID = '2.25.110781335013047424057883930821858647271';
const DEMO_SPECIALIST_NPI = '1234567893';

interface UploadView {
  uploadId: string;
  state: string;
  bundleVersion?: number;
  files: { name: string; kind: string; state: string; reason: string | null }[];
}

interface DeliveryView {
  state: string;
  attempts: number;
  version: number;
  remoteIds: { DiagnosticReport?: string; DocumentReference?: string; Communication?: string };
  lastError: string | null;
}

/** Two instances of one series, as the family's CD from the radiology department holds them. */
function familyDicomFiles(): { name: string; data: Buffer }[] {
  const { child } = fixtureManifest();
  const patientId = fixturePatientIdentifier('care-team-a')?.value ?? '';
  return [1, 2].map((n) => ({
    name: `IM${n}`,
    data: syntheticDicom({
      studyUid: BONE_AGE_STUDY_UID,
      seriesUid: `${BONE_AGE_STUDY_UID}.9`,
      sopUid: `${BONE_AGE_STUDY_UID}.9.${n}`,
      patientName: `${child.name.family.toUpperCase()}^${child.name.given.join(' ').toUpperCase()}`,
      patientId,
      birthDate: child.birthDate.replace(/-/g, ''),
      modality: 'DX',
      studyDescription: 'XR bone age, left hand PA (family CD)',
    }),
  }));
}

async function uploadFamilyFiles(ctx: ReviewStepsContext): Promise<void> {
  const { api, caseId, tokens, say } = ctx;
  const uploadToken = await api.json<{ token: string; expiresAt: string }>('POST', `/api/cases/${caseId}/upload-token`, tokens.caseManager, {});
  const form = new FormData();
  for (const file of familyDicomFiles()) form.append('file', new Blob([file.data]), file.name);
  const pdf = fs.readFileSync(path.join(committedFixturesDir(), 'pdf', 'b-gi-consult.pdf'));
  form.append('file', new Blob([pdf], { type: 'application/pdf' }), 'gi-consult-from-patient-portal.pdf');
  const accepted = await api.multipart<{ uploadId: string }>(`/api/cases/${caseId}/uploads`, uploadToken.token, form);
  const upload = await waitFor(
    'the upload to be ingested and assembled',
    async () => (await api.json<{ items: UploadView[] }>('GET', `/api/cases/${caseId}/uploads`, tokens.caseManager)).items.find((u) => u.uploadId === accepted.uploadId),
    (u) => u?.state === 'ingested',
  );
  say(`7. The family uploaded ${upload?.files.length ?? 0} files with a one-hour upload token (the family portal's way in):`);
  for (const f of upload?.files ?? []) say(`   ${f.name.padEnd(36)} ${f.kind.padEnd(6)} ${f.state}${f.reason ? ` — ${f.reason}` : ''}`);
  const bundle = await api.json<{ entry: { resource: FhirLike }[] }>('GET', `/api/cases/${caseId}/bundle`, tokens.caseManager);
  const studies = bundle.entry.map((e) => e.resource).filter((r) => r.resourceType === 'ImagingStudy' && r.identifier?.some((i) => i.value === `urn:oid:${BONE_AGE_STUDY_UID}`));
  const origins = [...new Set(studies.flatMap((r) => r.meta?.tag?.map((t) => t.code) ?? []))];
  if (studies.length !== 1) throw new Error(`expected the bone-age study once in the bundle, found ${studies.length}`);
  say(`   bundle version ${upload?.bundleVersion ?? '?'}: the bone-age study appears once, ${studies[0]?.series?.length ?? 0} series, origins ${origins.join(' + ')} (merged by StudyInstanceUID).`);
}

/** The few fields the demo reads from bundle entries. */
interface FhirLike {
  resourceType: string;
  identifier?: { value?: string }[];
  meta?: { tag?: { code?: string }[] };
  series?: unknown[];
}

/** The demo's specialist, registered once per service (a second journey finds her by NPI). */
async function ensureSpecialist(ctx: ReviewStepsContext): Promise<{ id: string }> {
  const { items } = await ctx.api.json<{ items: { id: string; npi: string }[] }>('GET', '/api/specialists', ctx.tokens.admin);
  const known = items.find((s) => s.npi === DEMO_SPECIALIST_NPI);
  if (known) return known;
  return ctx.api.json<{ id: string }>('POST', '/api/specialists', ctx.tokens.admin, {
    npi: DEMO_SPECIALIST_NPI,
    name: { family: 'Ångström', given: ['Zoë'], prefix: ['Dr.'], suffix: ['MD'] },
    specialties: ['2080P0205X'],
    userSub: ctx.specialistSub,
  });
}

async function payAndAssign(ctx: ReviewStepsContext): Promise<void> {
  const { api, caseId, tokens, say } = ctx;
  const offered = await api.json<{ quote: { total: number; addOns: { code: string; status: string; fee: number }[] } }>('GET', `/api/cases/${caseId}/quote`, tokens.caseManager);
  const radiology = offered.quote.addOns.find((a) => a.code === 'radiology-review');
  if (radiology?.status === 'offered') {
    await api.json('POST', `/api/cases/${caseId}/approvals`, tokens.caseManager, { addOn: 'radiology-review', channel: 'phone' });
  }
  const { quote } = await api.json<{ quote: { total: number } }>('GET', `/api/cases/${caseId}/quote`, tokens.caseManager);
  await api.json('POST', `/api/cases/${caseId}/payments`, tokens.caseManager, {
    amountCents: quote.total * 100,
    method: 'hsa_fsa_card',
    processorReference: `demo-${caseId.slice(0, 8)}`,
  });
  const receipt = await api.bytes(`/api/cases/${caseId}/receipt.pdf`, tokens.caseManager);
  say(`8. Imaging in the records offered radiology review ($${radiology?.fee ?? 0}); the family approved it; $${quote.total} paid by HSA card (receipt PDF, ${receipt.length} bytes).`);

  const specialist = await ensureSpecialist(ctx);
  const assigned = await api.json<{ specialist: { id: string }; method: string; matchedSpecialty?: string }>('POST', `/api/cases/${caseId}/assignment`, tokens.caseManager, { match: true });
  say(`9. Assigned by best match (${assigned.matchedSpecialty ?? assigned.method}) to Dr. Zoë Ångström (specialist ${specialist.id === assigned.specialist.id ? 'as registered' : assigned.specialist.id}).`);
}

async function signAndDeliver(ctx: ReviewStepsContext): Promise<DeliveryView> {
  const { api, caseId, tokens, say, world } = ctx;
  await api.json('POST', `/api/cases/${caseId}/recipients`, tokens.caseManager, { endpointId: ctx.endpointIds['referring-ehr'] });
  const intake = referredIntake();
  await api.json('PUT', `/api/cases/${caseId}/opinion`, tokens.specialist, {
    summary: 'Her diabetes control can improve with a pump; her growth is in keeping with celiac disease under treatment.',
    diagnosisAssessment: 'Type 1 diabetes and celiac disease are both confirmed by the records (HbA1c trend, tTG-IgA, biopsy).',
    recommendations: 'Start continuous subcutaneous insulin infusion with CGM; strict gluten-free diet with dietitian follow-up.',
    answers: intake.questions.map((question, i) => ({
      question,
      answer: i === 0 ? 'Yes: a pump with continuous glucose monitoring is recommended.' : 'Partly: catch-up growth is expected on a strict gluten-free diet; bone age is within range.',
    })),
    followUp: 'Endocrinology review in 3 months; growth check in 6 months.',
  });
  await api.json('POST', `/api/cases/${caseId}/opinion/sign`, tokens.specialist, {});
  const report = await api.bytes(`/api/cases/${caseId}/report.pdf`, tokens.caseManager);
  say(`10. The specialist answered ${intake.questions.length} questions and signed the opinion (report PDF, ${report.length} bytes). Delivering to ${world.referringEhr.name}:`);
  const delivery = await waitFor(
    'the delivery to the referring EHR',
    async () => (await api.json<{ items: DeliveryView[] }>('GET', `/api/cases/${caseId}/deliveries`, tokens.caseManager)).items[0],
    (d) => d !== undefined && ['delivered', 'failed', 'needs_review'].includes(d.state),
  );
  if (delivery?.state !== 'delivered') throw new Error(`the delivery ended ${delivery?.state ?? 'unknown'}: ${delivery?.lastError ?? ''}`);
  say(`    delivered in ${delivery.attempts} attempt(s): DiagnosticReport/${delivery.remoteIds.DiagnosticReport ?? '?'}, DocumentReference/${delivery.remoteIds.DocumentReference ?? '-'}, Communication/${delivery.remoteIds.Communication ?? '-'}`);
  return delivery;
}

export async function runReviewAndDelivery(ctx: ReviewStepsContext): Promise<void> {
  await uploadFamilyFiles(ctx);
  await payAndAssign(ctx);
  const delivery = await signAndDeliver(ctx);
  await saveArtifacts(ctx, delivery);
}

/** Writes what the demo made to `outDir` (the servers stop with the demo) and says where. */
async function saveArtifacts(ctx: ReviewStepsContext, delivery: DeliveryView): Promise<void> {
  const { api, caseId, tokens, world, say, outDir } = ctx;
  fs.mkdirSync(outDir, { recursive: true });
  const write = (name: string, data: Buffer | string): string => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, data);
    return path.relative(process.cwd(), file);
  };
  // As the referring physician's EHR holds it, found by our identifier.
  const identifier = reportIdentifierToken(caseId, delivery.version);
  const search = new URL(`${world.referringEhr.baseUrl}/DiagnosticReport`);
  search.searchParams.set('identifier', identifier);
  const ehrToken = world.referringEhr.issueAccessToken(world.client.clientId, 'system/*.read');
  const found = (await (await fetch(search, { headers: { accept: 'application/fhir+json', authorization: `Bearer ${ehrToken}` } })).json()) as { total?: number; entry?: unknown[] };
  say('Where to look (the servers stop with the demo, so the results are saved):');
  say(`   case bundle         ${write('case-bundle.json', await api.bytes(`/api/cases/${caseId}/bundle`, tokens.caseManager))}  (GET /api/cases/${caseId}/bundle)`);
  say(`   case record page    ${write('case-record.html', await api.bytes(`/api/cases/${caseId}/bundle/summary`, tokens.caseManager))}  (GET /api/cases/${caseId}/bundle/summary, to read or print)`);
  say(`   opinion PDF         ${write('report.pdf', await api.bytes(`/api/cases/${caseId}/report.pdf`, tokens.caseManager))}  (GET /api/cases/${caseId}/report.pdf)`);
  say(`   receipt PDF         ${write('receipt.pdf', await api.bytes(`/api/cases/${caseId}/receipt.pdf`, tokens.caseManager))}`);
  say(`   in the referring EHR ${write('referring-ehr-diagnostic-report.json', JSON.stringify(found, null, 2))}: GET ${search.toString()} → ${found.entry?.length ?? 0} DiagnosticReport`);
}
