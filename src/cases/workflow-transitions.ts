/**
 * Which moves of the lifecycle (lifecycle.ts) a case manager makes with `POST /api/cases/:id/transitions`,
 * and which only a workflow route makes, because it checks what the move promises: a specialist
 * assigned once records are complete and payment recorded, the opinion signed by its specialist, the
 * report delivered. The case detail and the 409 of `/transitions` list the first as
 * `allowedTransitions` (each one a `to` that route may be sent) and the others as
 * `workflowTransitions` (`{to, route}`), so no status is offered to a route that always refuses it.
 * @packageDocumentation
 */
import { allowedTransitions, type CaseStatus } from './lifecycle';

/** A move only its workflow route makes: the status, and the route (or what) that reaches it. */
interface WorkflowTransition {
  readonly to: CaseStatus;
  /** The route reaching `to` (method and path pattern). */
  readonly route: string;
  /** What it checks or does, in a sentence. */
  readonly detail: string;
}

/** The statuses `/transitions` refuses, with the workflow that reaches each. */
const WORKFLOW_ONLY: Readonly<Partial<Record<CaseStatus, Omit<WorkflowTransition, 'to'>>>> = Object.freeze({
  assigned: { route: 'POST /api/cases/:id/assignment', detail: 'a specialist is assigned once the records are complete and payment is recorded' },
  report_signed: { route: 'POST /api/cases/:id/opinion/sign', detail: 'the assigned specialist signs the opinion' },
  delivered: { route: 'GET /api/cases/:id/deliveries', detail: 'the signed report is delivered to its recipients (the delivery moves the case; follow it there)' },
});

/** Whether `to` is reached only through its workflow route, never through `/transitions`. */
function isWorkflowOnly(to: CaseStatus): boolean {
  return WORKFLOW_ONLY[to] !== undefined;
}

/** The workflow that reaches `to`, when only a workflow does (the 409 of `/transitions` names it). */
export function workflowTo(to: CaseStatus): WorkflowTransition | undefined {
  const workflow = WORKFLOW_ONLY[to];
  return workflow ? { to, ...workflow } : undefined;
}

/** The statuses a case in `from` may be moved to with `POST …/transitions` (the lifecycle's, less the workflow-only ones). */
function manualTransitions(from: CaseStatus): CaseStatus[] {
  return allowedTransitions(from).filter((to) => !isWorkflowOnly(to));
}

/** The lifecycle's moves from `from` that only a workflow route makes. */
function workflowTransitions(from: CaseStatus): WorkflowTransition[] {
  return allowedTransitions(from).flatMap((to) => {
    const workflow = workflowTo(to);
    return workflow ? [workflow] : [];
  });
}

/** The moves from `from`, as the case detail and the 409 of `/transitions` show them. */
export function transitionsFrom(from: CaseStatus): { allowedTransitions: CaseStatus[]; workflowTransitions: WorkflowTransition[] } {
  return { allowedTransitions: manualTransitions(from), workflowTransitions: workflowTransitions(from) };
}
