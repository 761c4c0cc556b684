import { CircuitOpenError } from '../fhir';

/** How this run of a pull, attachment or delivery job goes (what its queue job knows). */
export interface JobRun {
  /** The job's last attempt: a transient failure then fails the task, attachment or delivery for good. */
  readonly isLastAttempt: boolean;
  /**
   * The job will wait for an endpoint paused by its circuit breaker (`CircuitOpenError`) and run
   * again (see queues/paused-endpoint.ts), so such an error fails nothing for good, even on the last
   * attempt: the task, attachment or delivery stays as it is, saying it waits.
   */
  readonly waitsIfPaused?: boolean;
}

/** The `last_error` of something waiting for a paused endpoint. */
export function pausedMessage(retryAt: number): string {
  return `endpoint paused by its circuit breaker; waiting (next try after ${new Date(retryAt).toISOString()})`;
}

/** Whether this run's job will wait for the paused endpoint `err` says it met (so nothing fails for good). */
export function waitsFor(run: JobRun, err: unknown): err is CircuitOpenError {
  return run.waitsIfPaused === true && err instanceof CircuitOpenError;
}
