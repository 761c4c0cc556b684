import type { Migration } from './index';

/**
 * Who marked a notification read (`notifications.read_by`, the token subject): case managers share
 * one list, so "read" means someone on the team took it, and the team sees who. Older read
 * notifications keep `read_by` NULL (not recorded then).
 */
export const migration033: Migration = {
  version: 33,
  name: 'notification-read-by',
  sql: `
ALTER TABLE notifications ADD COLUMN read_by text;
`,
};
