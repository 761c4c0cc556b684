import type { Migration } from './index';
import { lz4WhereAvailable } from './lz4';

/**
 * Raw resources are kept as `json` rather than `jsonb`: the resource's text exactly as the server
 * sent it (the bytes cut out of the page, page-resources.ts), validated as JSON on the way in (a
 * resource that is not JSON still fails its page) but not rebuilt into jsonb's binary form.
 *
 * Why: building jsonb was the largest part of PostgreSQL's work per pulled resource, and rendering
 * it back to text the largest part of reading the raw store for an assembly; nothing queries
 * inside raw resources (assembly parses them in Node). The stored text is now byte for byte what
 * was received (jsonb reordered keys and dropped whitespace), which is what "raw" should mean.
 */
export const migration009: Migration = {
  version: 9,
  name: 'raw-resources-json',
  sql: `
ALTER TABLE raw_resources ALTER COLUMN resource TYPE json USING resource::json;
${lz4WhereAvailable('raw_resources', 'resource')}
`,
};
