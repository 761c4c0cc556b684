import { migration001 } from './001-cases';
import { migration002 } from './002-record-pull';
import { migration003 } from './003-case-bundles';
import { migration004 } from './004-raw-store-compression';
import { migration005 } from './005-uploads';
import { migration006 } from './006-review';
import { migration007 } from './007-opinion-delivery';
import { migration008 } from './008-case-bundle-parts';
import { migration009 } from './009-raw-resources-json';
import { migration010 } from './010-task-waiting';
import { migration011 } from './011-pull-cancel';
import { migration012 } from './012-task-patient';
import { migration013 } from './013-source-removal';
import { migration014 } from './014-endpoint-inbound-subject';
import { migration015 } from './015-opinion-records';
import { migration016 } from './016-audit-served-version';
import { migration017 } from './017-bundle-read-sequence';
import { migration018 } from './018-task-server-messages';
import { migration019 } from './019-draft-revision';
import { migration020 } from './020-cases-patient-index';
import { migration021 } from './021-task-expected-matches';
import { migration022 } from './022-endpoint-rebase-next-links';
import { migration023 } from './023-source-changed-read-seq';
import { migration024 } from './024-delivery-superseded-cancelled';
import { migration025 } from './025-sla-stopped-at';
import { migration026 } from './026-outbox-case-type-index';
import { migration027 } from './027-versionless-and-attachment-identity';
import { migration028 } from './028-retired-inbound-subjects';
import { migration029 } from './029-payment-reference-spaces';
import { migration030 } from './030-sla-stop-at-first-signature';
import { migration031 } from './031-webhook-secret-rotation';
import { migration032 } from './032-task-server-time';
import { migration033 } from './033-notification-read-by';
import { migration034 } from './034-payment-reversal';
import { migration035 } from './035-voided-payment-reference';
import { migration036 } from './036-withdrawn-information-requests';
import { migration037 } from './037-webhook-enabled-at-and-outbox-pruning';
import { migration038 } from './038-audit-before-answer';
import { migration039 } from './039-task-included';
import { migration040 } from './040-endpoint-token-endpoint';
import { migration041 } from './041-audit-disclosed-cases';
import { migration042 } from './042-delivery-write-started';
import { migration043 } from './043-webhook-delivery-requeued-at';
import { migration044 } from './044-delivery-review-code';
import { migration045 } from './045-pull-task-not-granted';
import { migration046 } from './046-pull-task-asked-types';

/** One numbered migration: applied once, in order, never edited after it has shipped. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006, migration007, migration008, migration009, migration010, migration011, migration012, migration013, migration014, migration015, migration016, migration017, migration018, migration019, migration020, migration021, migration022, migration023, migration024, migration025, migration026, migration027, migration028, migration029, migration030, migration031, migration032, migration033, migration034, migration035, migration036, migration037, migration038, migration039, migration040, migration041, migration042, migration043, migration044, migration045, migration046];
