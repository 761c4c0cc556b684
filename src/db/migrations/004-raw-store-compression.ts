import type { Migration } from './index';

/**
 * Raw store: LZ4 instead of PostgreSQL's default pglz for the TOASTed values the pull writes, i.e.
 * every raw page body (hundreds of KB of JSON) and the large raw resources (inline attachments,
 * Binary). pglz was the most expensive step of committing a page: ~12 ms of a ~500 KB page's
 * commit (about a fifth of it, on the page's critical path) against ~2 ms with LZ4, for a similar
 * ratio on JSON. Only the on-disk encoding changes: values read back byte for byte the same, and
 * values written before keep pglz (each value records its method).
 *
 * Servers built without LZ4 (and embedded PGlite) keep pglz: the change is applied only when the
 * server lists `lz4` among its TOAST compression methods.
 */
export const migration004: Migration = {
  version: 4,
  name: 'raw-store-compression',
  sql: `
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE raw_pages ALTER COLUMN body SET COMPRESSION lz4;
    ALTER TABLE raw_resources ALTER COLUMN resource SET COMPRESSION lz4;
  END IF;
END
$$;
`,
};
