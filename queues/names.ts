/** Queue names of the BullMQ topology (see queues/index.ts). */
export const QUEUES = {
  slaSweep: 'sla-sweep',
  pullSource: 'pull-source',
  fetchAttachment: 'fetch-attachment',
  assembleCase: 'assemble-case',
  reconcile: 'pull-reconcile',
} as const;
