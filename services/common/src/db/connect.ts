import pgvector from 'pgvector';
import postgres from 'postgres';

// One client for both the embedded server and a real Postgres server: the `postgres` package
// over the wire protocol. Nothing here knows which of the two it talks to.

export type Sql = postgres.Sql;

export interface ConnectOptions {
  /** Sets search_path to "<schema>, public" for every connection of this client. */
  schema?: string;
  /** Pool size; default 10. */
  max?: number;
  applicationName?: string;
  /**
   * statement_timeout in ms (0 or absent: the server's default). Sent in the startup packet like
   * search_path; the embedded server keeps only search_path per client, so there it has no effect.
   */
  statementTimeoutMs?: number;
}

export function connect(url: string, opts: ConnectOptions = {}): Sql {
  const connection: Record<string, string> = { application_name: opts.applicationName ?? 'loupe' };
  // Sent in the startup packet rather than with SET, so a reconnect gets it too; the embedded
  // server re-applies it whenever its single backend changes hands.
  if (opts.schema !== undefined) connection.search_path = `${quoteIdent(opts.schema)}, public`;
  if (opts.statementTimeoutMs) connection.statement_timeout = String(opts.statementTimeoutMs);
  return postgres(url, { max: opts.max ?? 10, connection, onnotice: onNotice });
}

/** Double-quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  if (name.length === 0 || name.includes('\0'))
    throw new Error(`invalid SQL identifier ${JSON.stringify(name)}`);
  return `"${name.replaceAll('"', '""')}"`;
}

// "relation already exists, skipping" and friends are routine for idempotent DDL.
function onNotice(notice: postgres.Notice): void {
  const severity = notice.severity ?? 'NOTICE';
  if (['DEBUG', 'LOG', 'INFO', 'NOTICE'].includes(severity)) return;
  process.emitWarning(`Postgres ${severity}: ${notice.message}`);
}

/**
 * pgvector's text form ('[1,2,3]') of a vector, for use as a query parameter:
 * sql`... ORDER BY embedding <=> ${toVector(q)}::vector`. Rejects NaN and infinities, which
 * pgvector would refuse with a less helpful message.
 */
export function toVector(values: ArrayLike<number>): string {
  const array = Array.from(values);
  const bad = array.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`vector element ${bad} is ${array[bad]}; pgvector needs finite numbers`);
  const text = pgvector.toSql(array);
  if (typeof text !== 'string') throw new Error('pgvector.toSql returned no text');
  return text;
}

/** Parses pgvector's text form ('[1,2,3]') into numbers. */
export function fromVector(text: string): number[] {
  const value = pgvector.fromSql(text);
  if (!Array.isArray(value)) throw new Error(`not a dense vector: ${text.slice(0, 40)}`);
  return value;
}

/**
 * Makes this client return `vector` columns as number[] and accept number[] / Float32Array where
 * the server expects a vector. The type's OID differs per database, so it is looked up once;
 * call it after the extension exists and before the first query that reads vectors (statements
 * prepared earlier keep returning text). Returns false when pgvector is not installed.
 */
export async function registerVectorType(sql: Sql): Promise<boolean> {
  const rows = await sql<{ oid: number }[]>`
    SELECT t.oid::int AS oid
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
    WHERE e.extname = 'vector' AND t.typname = 'vector'`;
  const oid = rows[0]?.oid;
  if (oid === undefined) return false;
  sql.options.parsers[oid] = (text: string) => fromVector(text);
  sql.options.serializers[oid] = (value: unknown) => serializeVector(value);
  return true;
}

function serializeVector(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return toVector(value as ArrayLike<number>);
  throw new Error(`cannot send ${typeof value} as a vector; use number[], Float32Array or toVector()`);
}
