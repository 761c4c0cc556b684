/**
 * SQL that switches a column's TOAST compression to LZ4 where the server offers it (PostgreSQL
 * built with LZ4; not PGlite, not every distribution's build), and leaves pglz elsewhere. LZ4
 * compresses JSON several times faster for a similar ratio; values read back the same either way.
 * The text it gives is part of the migrations that use it (their checksums): never change it.
 */
export function lz4WhereAvailable(table: string, column: string): string {
  return `DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE ${table} ALTER COLUMN ${column} SET COMPRESSION lz4;
  END IF;
END
$$;`;
}
