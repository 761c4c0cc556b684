/**
 * Helpers of the billing and review API tests: open a case, bring it to records_complete through
 * the lifecycle API, record payments, add specialists with valid NPIs.
 */
import { randomBytes } from 'node:crypto';
import { npiCheckDigit } from '../../src/cases/npi';
import type { Intake } from '../../src/cases/intake-schema';
import { openCase, startCaseManagerService } from './case-manager';
import { sampleIntake } from './intake';
import type { TestService } from './service';

/** A valid NPI whose first nine digits are `1` and eight random digits. */
export function randomNpi(): string {
  const first9 = `1${[...randomBytes(8)].map((b) => String(b % 10)).join('')}`;
  return `${first9}${npiCheckDigit(first9)}`;
}

/**
 * A unique processor reference like `ch_Xk3f_a…` (base64url, as processors' ids are letters and
 * digits). Never a long run of digits: the service refuses a value holding a 13–19-digit run that
 * passes the Luhn check as a card number (`billing/card-data.ts`), which a hex id or a timestamp
 * (`ch_${Date.now()}`: 13 digits, one in ten passing Luhn) sometimes is.
 */
export function processorReference(): string {
  return `ch_${randomBytes(12).toString('base64url')}`;
}

/** Problem+json with its named fields. */
export interface Problem {
  status: number;
  title: string;
  detail: string;
  errors?: { field: string; pointer: string; detail: string }[];
  [extension: string]: unknown;
}

/** Test-side client for one case manager. */
export class ReviewClient {
  constructor(
    readonly svc: TestService,
    readonly token: string,
  ) {}

  async json<T>(method: string, route: string, body?: unknown, token: string = this.token): Promise<{ status: number; body: T }> {
    const res = await this.svc.request(method, route, { token, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  openCase(intake: Intake = sampleIntake()): Promise<string> {
    return openCase(this.svc, this.token, intake);
  }

  async move(caseId: string, to: string): Promise<void> {
    const { status } = await this.json('POST', `/api/cases/${caseId}/transitions`, { to });
    if (status !== 200) throw new Error(`transition to ${to} answered ${status}`);
  }

  /** Assembles the case's record (a manual records_complete needs one: records-complete-readiness.ts). */
  async assemble(caseId: string): Promise<void> {
    const { status } = await this.json('POST', `/api/cases/${caseId}/bundle/rebuild`, {});
    if (status !== 201) throw new Error(`bundle rebuild answered ${status}`);
  }

  /** submitted → collecting_records → (record assembled) → records_complete. */
  async recordsComplete(caseId: string): Promise<void> {
    await this.move(caseId, 'collecting_records');
    await this.assemble(caseId);
    await this.move(caseId, 'records_complete');
  }

  async pay(caseId: string, amountCents: number, method = 'card'): Promise<{ status: number; body: unknown }> {
    return this.json('POST', `/api/cases/${caseId}/payments`, { amountCents, method, processorReference: processorReference() });
  }

  /** A paid case (85,000 cents; the payment's answer is not checked) whose records are complete. */
  async readyCase(intake: Intake = sampleIntake()): Promise<string> {
    const id = await this.openCase(intake);
    await this.recordsComplete(id);
    await this.pay(id, 85000);
    return id;
  }

  /** A {@link readyCase} assigned to `specialistId` (`POST /api/cases/:id/assignment`, expected 201). */
  async assignedCase(specialistId: string): Promise<string> {
    const id = await this.readyCase();
    expect((await this.json('POST', `/api/cases/${id}/assignment`, { specialistId })).status).toBe(201);
    return id;
  }

  /** The case as `GET /api/cases/:id` shows it to this client. */
  async caseDetail(caseId: string): Promise<CaseDetail> {
    return (await this.json<CaseDetail>('GET', `/api/cases/${caseId}`)).body;
  }

  /** The case's information requests as `GET /api/cases/:id/information-requests` lists them to this client. */
  async informationRequests(caseId: string): Promise<InformationRequestView[]> {
    return (await this.json<{ items: InformationRequestView[] }>('GET', `/api/cases/${caseId}/information-requests`)).body.items;
  }

  /** Adds a specialist (admin token) and answers their id. */
  async addSpecialist(adminToken: string, family: string, specialties: string[], userSub?: string): Promise<string> {
    const { status, body } = await this.json<{ id: string }>(
      'POST',
      '/api/specialists',
      { npi: randomNpi(), name: { family, given: ['Test'], prefix: ['Dr.'] }, specialties, ...(userSub ? { userSub } : {}) },
      adminToken,
    );
    if (status !== 201) throw new Error(`add specialist answered ${status}`);
    return body.id;
  }
}

/** What {@link startReviewService} starts: the service, a case manager's client and an admin token. */
export interface ReviewService {
  readonly svc: TestService;
  readonly cm: ReviewClient;
  readonly admin: string;
  /** Stops the service. */
  stop(): Promise<void>;
}

/** A test service with a case manager's client and an admin token (subjects `cm-<tag>`, `admin-<tag>`). */
export async function startReviewService(tag: string): Promise<ReviewService> {
  const { svc, cm, stop } = await startCaseManagerService({}, `cm-${tag}`);
  return { svc, cm: new ReviewClient(svc, cm), admin: await svc.token('admin', `admin-${tag}`), stop };
}

/** An opinion answering each question of the sample intake (a valid `PUT /api/cases/:id/opinion` body). */
export function sampleOpinionBody(): Record<string, unknown> {
  return {
    summary: 'S.',
    diagnosisAssessment: 'A.',
    recommendations: 'R.',
    followUp: 'F.',
    answers: sampleIntake().questions.map((question) => ({ question, answer: 'Answered.' })),
  };
}

/** The data of the case's outbox events of `type`, oldest first. */
export async function outboxEventData(svc: TestService, caseId: string, type: string): Promise<Record<string, unknown>[]> {
  const { rows } = await svc.service.db.query<{ data: Record<string, unknown> }>('SELECT data FROM outbox WHERE case_id = $1 AND type = $2 ORDER BY id', [caseId, type]);
  return rows.map((r) => r.data);
}

/** The id of the case's current assignment (none: undefined). */
export async function currentAssignmentId(svc: TestService, caseId: string): Promise<string | undefined> {
  const { rows } = await svc.service.db.query<{ id: string }>('SELECT id FROM assignments WHERE case_id = $1 AND ended_at IS NULL', [caseId]);
  return rows[0]?.id;
}

/** A case timeline event as `GET /api/cases/:id` lists it. */
export interface TimelineEvent {
  type: string;
  reason?: string;
  data?: Record<string, unknown>;
}

/** A case as `GET /api/cases/:id` shows it (the fields the review tests read). */
export interface CaseDetail {
  status: string;
  sla: { paused: boolean; targetDue: string } | null;
  assignment: { specialistId: string; method: string } | null;
  timeline: TimelineEvent[];
}

/** An information request as the API answers and lists it (the fields the review tests read). */
export interface InformationRequestView {
  id: string;
  kind: string;
  state: string;
  requestedBy: string;
  message: string;
}
