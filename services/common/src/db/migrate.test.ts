import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Sql } from './connect.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';
import { readMigrations, runMigrations } from './migrate.js';

let root: string;
let db: EmbeddedPostgres;
let sql: Sql;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'loupe-migrate-'));
  db = await startEmbeddedPostgres({ dataDir: join(root, 'pg') });
  sql = connect(db.url, { max: 2 });
});

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.stop();
  await rm(root, { recursive: true, force: true });
});

async function migrationDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

describe('runMigrations', () => {
  it('applies pending files in order into the schema, once', async () => {
    const dir = await migrationDir('basic', {
      '0002_more.sql': 'ALTER TABLE items ADD COLUMN note text; CREATE INDEX ON items (note);',
      '0001_init.sql': 'CREATE TABLE items (id serial PRIMARY KEY, embedding vector(3));',
    });
    expect(await runMigrations(sql, { schema: 'basic', dir })).toEqual({
      applied: ['0001_init', '0002_more'],
    });
    expect(await runMigrations(sql, { schema: 'basic', dir })).toEqual({ applied: [] });
    const rows =
      await sql`SELECT version, length(checksum) AS len FROM basic.schema_migrations ORDER BY version`;
    expect(rows).toEqual([
      { version: '0001_init', len: 64 },
      { version: '0002_more', len: 64 },
    ]);
    // Unqualified names in the files landed in the service's schema, not in public.
    await sql`INSERT INTO basic.items (embedding, note) VALUES ('[1,2,3]', 'x')`;
    expect(await sql`SELECT to_regclass('public.items') AS t`).toEqual([{ t: null }]);
  });

  it('refuses to start when an applied file changed, naming the file', async () => {
    const dir = await migrationDir('edited', { '0001_init.sql': 'CREATE TABLE t (x int);' });
    await runMigrations(sql, { schema: 'edited', dir });
    await writeFile(join(dir, '0001_init.sql'), 'CREATE TABLE t (x bigint);');
    await writeFile(join(dir, '0002_next.sql'), 'CREATE TABLE u (x int);');
    await expect(runMigrations(sql, { schema: 'edited', dir })).rejects.toThrow(
      /0001_init\.sql changed after it was applied/,
    );
    expect(await sql`SELECT to_regclass('edited.u') AS t`).toEqual([{ t: null }]);
  });

  it('refuses when an applied file is missing or a new file sorts before an applied one', async () => {
    const dir = await migrationDir('gaps', { '0002_b.sql': 'SELECT 1;' });
    await runMigrations(sql, { schema: 'gaps', dir });
    await writeFile(join(dir, '0001_a.sql'), 'SELECT 1;');
    await expect(runMigrations(sql, { schema: 'gaps', dir })).rejects.toThrow(
      /0001_a\.sql is pending but the later 0002_b/,
    );
    await rm(join(dir, '0001_a.sql'));
    await rm(join(dir, '0002_b.sql'));
    await expect(runMigrations(sql, { schema: 'gaps', dir })).rejects.toThrow(/no 0002_b\.sql/);
  });

  it('rolls back only the failing file and names it', async () => {
    const dir = await migrationDir('broken', {
      '0001_ok.sql': 'CREATE TABLE a (x int);',
      '0002_bad.sql': 'CREATE TABLE b (x int); SELECT no_such_column FROM a;',
    });
    await expect(runMigrations(sql, { schema: 'broken', dir })).rejects.toThrow(
      /0002_bad\.sql failed: .*no_such_column/,
    );
    expect(await sql`SELECT version FROM broken.schema_migrations`).toEqual([{ version: '0001_ok' }]);
    expect(await sql`SELECT to_regclass('broken.b') AS t`).toEqual([{ t: null }]);
  });

  it('rejects badly named or duplicate-numbered files', async () => {
    const badName = await migrationDir('badname', { '1_init.sql': 'SELECT 1;' });
    await expect(readMigrations(badName)).rejects.toThrow(/must be named NNNN_name\.sql/);
    const duplicate = await migrationDir('dup', { '0001_a.sql': 'SELECT 1;', '0001_b.sql': 'SELECT 1;' });
    await expect(readMigrations(duplicate)).rejects.toThrow(/share the number 0001/);
  });

  it('is safe when several processes migrate the same schema at once', async () => {
    const files: Record<string, string> = {};
    for (let i = 1; i <= 6; i++) {
      const v = String(i).padStart(4, '0');
      files[`${v}_step.sql`] =
        i === 1
          ? `CREATE TABLE log (version text PRIMARY KEY); INSERT INTO log VALUES ('${v}');`
          : `INSERT INTO log VALUES ('${v}');`;
    }
    const dir = await migrationDir('racing', files);
    const runners = [1, 2, 3].map(() => connect(db.url, { max: 1 }));
    try {
      const results = await Promise.all(runners.map((r) => runMigrations(r, { schema: 'racing', dir })));
      const applied = results.flatMap((r) => r.applied).sort();
      // Each file ran exactly once, whichever runner got it.
      expect(applied).toEqual(Object.keys(files).map((f) => f.replace('.sql', '')));
      expect((await sql`SELECT count(*)::int AS n FROM racing.log`)[0].n).toBe(6);
    } finally {
      await Promise.all(runners.map((r) => r.end({ timeout: 1 })));
    }
  });
});
