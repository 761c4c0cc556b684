/** Queue names of the BullMQ topology (see queues/index.ts). */
export const QUEUES = {
  slaSweep: 'sla-sweep',
  pullSource: 'pull-source',
  fetchAttachment: 'fetch-attachment',
  assembleCase: 'assemble-case',
  reconcile: 'pull-reconcile',
  ingestUpload: 'ingest-upload',
  deliverReport: 'deliver-report',
  notify: 'notify',
  sendWebhook: 'send-webhook',
} as const;
