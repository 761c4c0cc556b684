import type { Database } from '../../src/db/database';

/** A write PostgreSQL refuses while it is in place (see {@link refuseWrites}). */
export interface RefusedWrites {
  /** How many writes were refused so far (a sequence: not rolled back with them). */
  refusals(): Promise<number>;
  /** Takes the fault away. */
  remove(): Promise<void>;
}

/**
 * Injects a real fault into the test's own database: a trigger that refuses (raises `<name> refused
 * (test fault)`) each `operation` on `table` whose row matches `when` (a PL/pgSQL condition over
 * `NEW`/`OLD`), counting the refusals in a sequence. For tests of "all or nothing" writes: the
 * transaction that meets it must leave nothing behind.
 * @param name - a SQL identifier, unique among the faults in place at once
 */
export async function refuseWrites(db: Database, fault: { name: string; table: string; operation: 'INSERT' | 'UPDATE'; when: string }): Promise<RefusedWrites> {
  const { name, table, operation, when } = fault;
  await db.exec(`
    CREATE SEQUENCE ${name}_refusals;
    CREATE FUNCTION refuse_${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${when} THEN
        PERFORM nextval('${name}_refusals');
        RAISE EXCEPTION '${name} refused (test fault)';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_${name} BEFORE ${operation} ON ${table} FOR EACH ROW EXECUTE FUNCTION refuse_${name}();`);
  return {
    refusals: async () =>
      Number((await db.query<{ n: string }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM ${name}_refusals`)).rows[0]?.n ?? 0),
    remove: () => db.exec(`DROP TRIGGER refuse_${name} ON ${table}; DROP FUNCTION refuse_${name}(); DROP SEQUENCE ${name}_refusals;`),
  };
}
