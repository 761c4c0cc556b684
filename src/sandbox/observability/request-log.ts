/**
 * What a server has been asked, for tests: counts per `METHOD path` (path relative to the FHIR base,
 * no query) and the last requests with their status.
 */
import { parseRoutePattern } from '../faults/route-pattern';

export interface RecordedRequest {
  readonly method: string;
  /** Path relative to the FHIR base plus query, e.g. `/Observation?patient=1&_count=10`. */
  readonly target: string;
  /** Status sent, or undefined if none was (hang, reset, truncated body). */
  status: number | undefined;
  /** Whether an `Authorization` header was present (never its value). */
  readonly hadAuthorization: boolean;
  /** Epoch ms. */
  readonly at: number;
}

const MAX_RECORDED = 10_000;

export class RequestLog {
  private readonly counts = new Map<string, number>();
  private readonly recent: RecordedRequest[] = [];

  record(request: RecordedRequest): RecordedRequest {
    const key = `${request.method} ${request.target.split('?')[0]}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.recent.push(request);
    if (this.recent.length > MAX_RECORDED) {
      this.recent.splice(0, this.recent.length - MAX_RECORDED);
    }
    return request;
  }

  /**
   * Number of requests received; all of them without a pattern, else those matching a request
   * pattern such as `GET /Observation*` or `POST /` (see route-pattern.ts).
   */
  count(pattern?: string): number {
    if (pattern === undefined) {
      let total = 0;
      for (const count of this.counts.values()) {
        total += count;
      }
      return total;
    }
    const matcher = parseRoutePattern(pattern);
    if (pattern.includes('?') || pattern.includes('~')) {
      return this.recent.filter((request) => matcher.matches(request.method, request.target)).length;
    }
    let total = 0;
    for (const [key, count] of this.counts) {
      const space = key.indexOf(' ');
      if (matcher.matches(key.slice(0, space), key.slice(space + 1))) {
        total += count;
      }
    }
    return total;
  }

  /** The most recent requests (at most 10,000), oldest first. */
  requests(): readonly RecordedRequest[] {
    return this.recent;
  }

  clear(): void {
    this.counts.clear();
    this.recent.length = 0;
  }
}
