/**
 * Resources that clients wrote over HTTP (creates, updates, deletes, including those inside
 * transactions), in order, so delivery tests can check what was posted. Seeding with `load()`
 * is not recorded.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { WriteEvent, WriteKind } from '../repository/sandbox-repository';

export interface WrittenResource {
  readonly kind: WriteKind;
  readonly resourceType: string;
  readonly id: string;
  /** A copy of the resource as stored (undefined for a delete). */
  readonly resource: Resource | undefined;
  /** Epoch ms. */
  readonly at: number;
}

export class WrittenResourceLog {
  private readonly written: WrittenResource[] = [];

  constructor(private readonly now: () => number) {}

  /** Repository write listener. */
  readonly onWrite = (event: WriteEvent): void => {
    if (event.origin !== 'http') {
      return;
    }
    this.written.push({
      kind: event.kind,
      resourceType: event.resourceType,
      id: event.id,
      resource: event.resource ? structuredClone(event.resource) : undefined,
      at: this.now(),
    });
  };

  list(resourceType?: string): readonly WrittenResource[] {
    return resourceType === undefined ? this.written : this.written.filter((entry) => entry.resourceType === resourceType);
  }

  clear(): void {
    this.written.length = 0;
  }
}
