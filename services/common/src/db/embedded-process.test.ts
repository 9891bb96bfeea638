import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Sql } from './connect.js';
import { type SpawnedEmbeddedPostgres, spawnEmbeddedPostgres } from './embedded.js';

// The database as a separate process (what services and end-to-end tests use). Needs the
// compiled entry: `npm run build` (or `npx tsc -b services/common`) first.

let dataDir: string;
let db: SpawnedEmbeddedPostgres | undefined;
const clients: Sql[] = [];

function client(url: string): Sql {
  const sql = connect(url, { max: 1 });
  clients.push(sql);
  return sql;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'loupe-embedded-process-'));
  db = await spawnEmbeddedPostgres({ dataDir });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
  await db?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function current(): SpawnedEmbeddedPostgres {
  if (!db) throw new Error('database not running');
  return db;
}

describe('spawnEmbeddedPostgres', () => {
  it('serves, stops on SIGTERM and finds its data again', async () => {
    const sql = client(current().url);
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO t VALUES (0, 'before restart')`;
    await sql.end();
    await current().stop();
    db = await spawnEmbeddedPostgres({ dataDir });
    expect(await client(current().url)`SELECT v FROM t`).toEqual([{ v: 'before restart' }]);
  });

  it('refuses a second server on the same data dir', async () => {
    await expect(spawnEmbeddedPostgres({ dataDir })).rejects.toThrow(/in use by process/);
  });

  it('survives kill -9 mid-write: committed rows are there and the data dir is usable', async () => {
    const { port, pid } = current();
    const sql = client(current().url);
    let acked = 0;
    const writer = (async () => {
      for (let i = 1; ; i++) {
        await sql`INSERT INTO t VALUES (${i}, ${'x'.repeat(2000)})`;
        acked = i;
      }
    })().catch((err: unknown) => err);
    while (acked < 50) await new Promise((resolve) => setTimeout(resolve, 10));
    process.kill(pid, 'SIGKILL');
    await current().exited;
    // The client sees its connection drop; nothing hangs.
    expect(await writer).toBeInstanceOf(Error);

    db = await spawnEmbeddedPostgres({ dataDir, port });
    // Same client object: postgres.js reconnects on the next query once the port answers again.
    const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM t WHERE id > 0`;
    expect(n).toBeGreaterThanOrEqual(acked);
    expect(n).toBeLessThanOrEqual(acked + 1);
    await sql`INSERT INTO t SELECT g, 'after' FROM generate_series(100000, 100999) g`;
    await sql`CREATE INDEX t_v ON t (v)`;
    await sql`VACUUM ANALYZE t`;
    expect(await sql`SELECT count(*)::int AS n FROM t WHERE v = 'after'`).toEqual([{ n: 1000 }]);
  });

  it('lives on when a client process is kill -9ed inside a transaction', async () => {
    const postgresModule = fileURLToPath(import.meta.resolve('postgres'));
    const script = `
      import postgres from ${JSON.stringify(postgresModule)};
      const sql = postgres(${JSON.stringify(current().url)}, { max: 1 });
      await sql.begin(async (tx) => {
        await tx\`INSERT INTO t VALUES (-1, 'never committed')\`;
        console.log('inside');
        await new Promise(() => {});
      });`;
    const service = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      service.stdout.on('data', () => resolve());
      service.on('exit', (code) => reject(new Error(`client process exited early with code ${code}`)));
    });
    const sql = client(current().url);
    const blocked = sql`SELECT count(*)::int AS n FROM t WHERE id = -1`.execute();
    service.kill('SIGKILL');
    // Its transaction is rolled back as soon as its socket closes, not after an idle timeout.
    const t0 = Date.now();
    expect(await blocked).toEqual([{ n: 0 }]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
