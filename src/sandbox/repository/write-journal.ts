/**
 * The state a transaction found before it first touched each resource, so the transaction can be
 * undone if any entry fails. FHIR: "If any resource identities (including resolved identities from
 * conditional update/delete) overlap … or if any entry fails, the whole transaction SHALL fail".
 *
 * @see https://hl7.org/fhir/R4/http.html#transaction
 */
import type { Resource } from '@medplum/fhirtypes';
import type { WriteEvent } from './sandbox-repository';

export interface JournalEntry {
  readonly resourceType: string;
  readonly id: string;
  /** The stored resource before the transaction; undefined if it did not exist. */
  readonly before: Resource | undefined;
  /** Length of the resource's version history before the transaction. */
  readonly historyLength: number;
}

export class WriteJournal {
  private readonly entries = new Map<string, JournalEntry>();
  /** Write announcements held back until the transaction succeeds. */
  readonly pendingEvents: WriteEvent[] = [];

  /** Records the first state seen for a resource; later writes to the same resource are ignored. */
  recordFirstTouch(entry: JournalEntry): void {
    const key = `${entry.resourceType}/${entry.id}`;
    if (!this.entries.has(key)) {
      this.entries.set(key, entry);
    }
  }

  /** Entries in reverse order of first touch, the order in which to undo them. */
  entriesToUndo(): JournalEntry[] {
    return [...this.entries.values()].reverse();
  }
}
