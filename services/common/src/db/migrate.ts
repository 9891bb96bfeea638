import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteIdent, type Sql } from './connect.js';

export interface MigrationFile {
  /** File name without .sql, e.g. 0001_init; the primary key in schema_migrations. */
  version: string;
  path: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  /** The service's schema; created if missing, and first on search_path while its files run. */
  schema: string;
  /** Folder of NNNN_name.sql files, applied in name order. */
  dir: string;
}

const FILE_NAME = /^(\d{4})_[A-Za-z0-9_-]+\.sql$/;

/**
 * Applies the pending migrations of one schema, each file in its own transaction, and records
 * them in <schema>.schema_migrations. Refuses to run (before applying anything) when an applied
 * file changed or disappeared. Safe to run from several processes at once: every step takes a
 * transaction-scoped advisory lock per schema, and re-reads what is applied under it.
 * Files run inside a transaction, so statements that cannot (CREATE INDEX CONCURRENTLY) are out.
 */
export async function runMigrations(sql: Sql, opts: MigrateOptions): Promise<{ applied: string[] }> {
  const files = await readMigrations(opts.dir);
  const schema = quoteIdent(opts.schema);
  const applied: string[] = [];
  for (;;) {
    const version = await sql.begin(async (tx) => {
      // Transaction-scoped on purpose: on the embedded server all clients share one session, so a
      // session-level advisory lock would not exclude anyone there.
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`loupe.migrations:${opts.schema}`}, 0))`;
      await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
           version text PRIMARY KEY,
           checksum text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const done = await tx.unsafe<{ version: string; checksum: string }[]>(
        `SELECT version, checksum FROM ${schema}.schema_migrations`,
      );
      const next = pendingMigrations(files, done, opts)[0];
      if (!next) return null;
      await tx.unsafe(`SET LOCAL search_path TO ${schema}, public`);
      try {
        await tx.unsafe(next.sql);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`migration ${next.path} failed: ${reason}`, { cause: err });
      }
      await tx.unsafe(`INSERT INTO ${schema}.schema_migrations (version, checksum) VALUES ($1, $2)`, [
        next.version,
        next.checksum,
      ]);
      return next.version;
    });
    if (version === null) return { applied };
    applied.push(version);
  }
}

/** Reads and checks the migration folder: every .sql file must be NNNN_name.sql with a unique number. */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const seen = new Map<string, string>();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const match = FILE_NAME.exec(name);
    if (!match)
      throw new Error(`migration file ${join(dir, name)} must be named NNNN_name.sql (e.g. 0001_init.sql)`);
    const earlier = seen.get(match[1]);
    if (earlier) throw new Error(`migrations ${earlier} and ${name} in ${dir} share the number ${match[1]}`);
    seen.set(match[1], name);
    const path = join(dir, name);
    const sql = await readFile(path, 'utf8');
    files.push({ version: name.slice(0, -'.sql'.length), path, sql, checksum: checksum(sql) });
  }
  return files;
}

// Line endings are normalised so that a checkout with CRLF does not look like an edited file.
function checksum(sql: string): string {
  return createHash('sha256').update(sql.replaceAll('\r\n', '\n')).digest('hex');
}

function pendingMigrations(
  files: MigrationFile[],
  done: { version: string; checksum: string }[],
  opts: MigrateOptions,
): MigrationFile[] {
  const byVersion = new Map(files.map((f) => [f.version, f]));
  for (const row of done) {
    const file = byVersion.get(row.version);
    if (!file) {
      throw new Error(
        `migration ${row.version} is recorded in ${opts.schema}.schema_migrations but ${opts.dir} has no ${row.version}.sql; is this code older than the database?`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new Error(
        `migration ${file.path} changed after it was applied to schema ${opts.schema} (checksum ${row.checksum.slice(0, 12)} in the database, ${file.checksum.slice(0, 12)} on disk); add a new migration instead of editing an applied one`,
      );
    }
  }
  const applied = new Set(done.map((r) => r.version));
  const pending = files.filter((f) => !applied.has(f.version));
  const lastApplied = files.filter((f) => applied.has(f.version)).at(-1);
  const early = lastApplied && pending.find((f) => f.version < lastApplied.version);
  if (early && lastApplied) {
    throw new Error(
      `migration ${early.path} is pending but the later ${lastApplied.version} is already applied to schema ${opts.schema}; renumber it after ${lastApplied.version}`,
    );
  }
  return pending;
}
