import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Sql } from './connect.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';

// These tests pin down how the embedded server behaves when several clients share PGlite's one
// backend, including the places where it differs from a real Postgres server.

let dataDir: string;
let db: EmbeddedPostgres;
const clients: Sql[] = [];

function client(opts: { schema?: string; max?: number } = {}): Sql {
  const sql = connect(db.url, { max: 1, ...opts });
  clients.push(sql);
  return sql;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Settles to 'pending' if `p` has not settled within `ms`. */
async function stateAfter(p: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  return Promise.race([p.then(() => 'settled' as const), sleep(ms).then(() => 'pending' as const)]);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'loupe-embedded-'));
  db = await startEmbeddedPostgres({ dataDir });
  const sql = client();
  await sql`CREATE TABLE kv (k int PRIMARY KEY, v text)`;
  await sql`INSERT INTO kv VALUES (1, 'old')`;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end({ timeout: 1 })));
  await db?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('transactions from separate connections', () => {
  it('queue B behind A: B sees no uncommitted write and is not folded into A', async () => {
    const a = client();
    const b = client();
    let readByB: Promise<string> | undefined;
    let insertByB: Promise<unknown> | undefined;
    await a
      .begin(async (tx) => {
        await tx`UPDATE kv SET v = 'uncommitted' WHERE k = 1`;
        readByB = b`SELECT v FROM kv WHERE k = 1`.then((r) => String(r[0].v));
        insertByB = b`INSERT INTO kv VALUES (2, 'from b')`.execute();
        // B waits for the whole transaction, not just for a row lock.
        expect(await stateAfter(readByB, 300)).toBe('pending');
        throw new Error('roll back');
      })
      .catch((err: Error) => expect(err.message).toBe('roll back'));
    expect(await readByB).toBe('old');
    await insertByB;
    // B's insert ran after A's rollback, in its own transaction, so it survived it.
    expect(await b`SELECT v FROM kv WHERE k = 2`).toEqual([{ v: 'from b' }]);
  });

  it('hands out distinct rows to concurrent FOR UPDATE SKIP LOCKED claims', async () => {
    const setup = client();
    await setup`CREATE TABLE jobs (id int PRIMARY KEY, claimed_by int)`;
    await setup`INSERT INTO jobs SELECT g, NULL FROM generate_series(1, 40) g`;
    const claim = async (worker: number): Promise<number[]> => {
      const sql = client();
      const mine: number[] = [];
      for (;;) {
        const ids = await sql.begin(async (tx) => {
          const rows = await tx<{ id: number }[]>`
            SELECT id FROM jobs WHERE claimed_by IS NULL ORDER BY id LIMIT 3 FOR UPDATE SKIP LOCKED`;
          await sleep(2); // a client round trip inside the transaction
          for (const { id } of rows) await tx`UPDATE jobs SET claimed_by = ${worker} WHERE id = ${id}`;
          return rows.map((r) => r.id);
        });
        if (ids.length === 0) return mine;
        mine.push(...ids);
      }
    };
    const claimed = await Promise.all([1, 2, 3, 4].map(claim));
    const all = claimed.flat().sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect((await setup`SELECT count(*)::int AS n FROM jobs WHERE claimed_by IS NULL`)[0].n).toBe(0);
  });

  it('makes a transaction-level advisory lock exclude other connections', async () => {
    const a = client();
    const b = client();
    let committedAt = 0;
    let tryLock: Promise<{ got: boolean; at: number }> | undefined;
    await a.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(42)`;
      tryLock = b`SELECT pg_try_advisory_xact_lock(42) AS got`.then((r) => ({
        got: Boolean(r[0].got),
        at: Date.now(),
      }));
      expect(await stateAfter(tryLock, 200)).toBe('pending');
      committedAt = Date.now();
    });
    const result = await tryLock;
    expect(result?.got).toBe(true);
    expect(result?.at).toBeGreaterThanOrEqual(committedAt);
  });

  it('does NOT isolate session-level advisory locks (one shared backend session)', async () => {
    const a = client();
    const b = client();
    expect((await a`SELECT pg_try_advisory_lock(7) AS got`)[0].got).toBe(true);
    // On a real server this would be false. Use pg_advisory_xact_lock or row locks instead.
    expect((await b`SELECT pg_try_advisory_lock(7) AS got`)[0].got).toBe(true);
    await a`SELECT pg_advisory_unlock_all()`;
  });

  it('rolls back what a vanished client left open and carries on', async () => {
    const raw = await rawClient(db.port);
    raw.write(queryMessage("BEGIN; INSERT INTO kv VALUES (3, 'orphan')"));
    await raw.untilReady();
    raw.socket.destroy();
    const b = client();
    expect(await b`SELECT count(*)::int AS n FROM kv WHERE k = 3`).toEqual([{ n: 0 }]);
  });
});

describe('protocol exchanges from several clients', () => {
  it('keeps a Bind/Execute split across TCP writes away from other clients', async () => {
    const raw = await rawClient(db.port);
    const b = client();
    await b`SELECT 1`;
    raw.write(Buffer.concat([parseMessage('select $1::text as who'), bindMessage(['A'])]));
    await sleep(50);
    const fromB = b`SELECT ${'B'}::text AS who`.execute();
    await sleep(50);
    raw.write(Buffer.concat([executeMessage(), SYNC]));
    const reply = await raw.untilReady();
    expect(reply.errors).toEqual([]);
    expect(reply.rows).toEqual([['A']]);
    expect(await fromB).toEqual([{ who: 'B' }]);
    raw.socket.destroy();
  });

  it('does not let one client’s error swallow another client’s messages', async () => {
    const raw = await rawClient(db.port);
    const b = client();
    await b`SELECT 1`;
    raw.write(parseMessage('selec broken'));
    await sleep(50);
    const fromB = b`SELECT ${'B'}::text AS who`.execute();
    await sleep(50);
    raw.write(SYNC);
    expect((await raw.untilReady()).errors[0]).toMatch(/syntax error/);
    expect(await Promise.race([fromB, sleep(2000).then(() => 'hung')])).toEqual([{ who: 'B' }]);
    raw.socket.destroy();
  });

  it('keeps unnamed statements of concurrent clients apart', async () => {
    const x = client();
    const y = client();
    const jobs = Array.from({ length: 100 }, (_, i) => [
      x.unsafe('SELECT $1::int AS n', [i]).then((r) => r[0].n === i),
      y.unsafe('SELECT $1::text AS t, 2 AS two', [`y${i}`]).then((r) => r[0].t === `y${i}`),
    ]).flat();
    expect((await Promise.all(jobs)).every(Boolean)).toBe(true);
  });

  it('gives each connection the search_path of its startup packet', async () => {
    const admin = client();
    await admin`CREATE SCHEMA one`;
    await admin`CREATE SCHEMA two`;
    await admin`CREATE TABLE one.t AS SELECT 'one' AS x`;
    await admin`CREATE TABLE two.t AS SELECT 'two' AS x`;
    const one = client({ schema: 'one', max: 2 });
    const two = client({ schema: 'two', max: 2 });
    const checks = Array.from({ length: 30 }, () => [
      one`SELECT x FROM t`.then((r) => r[0].x === 'one'),
      two`SELECT x FROM t`.then((r) => r[0].x === 'two'),
      admin`SHOW search_path`.then((r) => r[0].search_path === 'public'),
    ]).flat();
    expect((await Promise.all(checks)).every(Boolean)).toBe(true);
  });
});

describe('lifecycle', () => {
  it('refuses a second server on a data dir in use', async () => {
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/in use by process/);
  });

  it('keeps data across a clean restart and times out a client idling in a transaction', async () => {
    await Promise.all(clients.splice(0).map((c) => c.end({ timeout: 1 })));
    await db.stop();
    db = await startEmbeddedPostgres({ dataDir, idleInTransactionTimeoutMs: 300 });
    const a = client();
    const b = client();
    expect(await b`SELECT v FROM kv WHERE k = 2`).toEqual([{ v: 'from b' }]);
    const stuck = a.begin(async (tx) => {
      await tx`UPDATE kv SET v = 'stuck' WHERE k = 1`;
      await sleep(1500);
      await tx`SELECT 1`;
    });
    let stuckSettled = false;
    stuck.then(
      () => {
        stuckSettled = true;
      },
      () => {
        stuckSettled = true;
      },
    );
    await sleep(50);
    // b is answered from committed data while a's transaction is still open (not after it ends)
    expect(await b`SELECT v FROM kv WHERE k = 1`).toEqual([{ v: 'old' }]);
    expect(stuckSettled).toBe(false);
    await expect(stuck).rejects.toThrow();
  });
});

// A minimal wire client, so a test can decide exactly where a client's TCP writes split.

const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`);
const queryMessage = (text: string) => frame('Q', cstr(text));
const parseMessage = (text: string) => frame('P', Buffer.concat([cstr(''), cstr(text), Buffer.from([0, 0])]));
const executeMessage = () => frame('E', Buffer.concat([cstr(''), Buffer.alloc(4)]));

function bindMessage(params: string[]): Buffer {
  const parts = [cstr(''), cstr(''), Buffer.from([0, 0]), Buffer.from([0, params.length])];
  for (const p of params) {
    const value = Buffer.from(p);
    const length = Buffer.alloc(4);
    length.writeInt32BE(value.length);
    parts.push(length, value);
  }
  parts.push(Buffer.from([0, 0]));
  return frame('B', Buffer.concat(parts));
}

interface Reply {
  rows: (string | null)[][];
  errors: string[];
}

async function rawClient(
  port: number,
): Promise<{ socket: Socket; write(b: Buffer): void; untilReady(): Promise<Reply> }> {
  const socket = netConnect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let buffer = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    buffer = Buffer.concat([buffer, d]);
    wake?.();
  });
  const untilReady = async (): Promise<Reply> => {
    const reply: Reply = { rows: [], errors: [] };
    for (;;) {
      while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
        const type = String.fromCharCode(buffer[0]);
        const body = buffer.subarray(5, 1 + buffer.readInt32BE(1));
        buffer = buffer.subarray(1 + buffer.readInt32BE(1));
        if (type === 'Z') return reply;
        if (type === 'E')
          reply.errors.push(
            body
              .toString()
              .split('\0')
              .find((f) => f.startsWith('M'))
              ?.slice(1) ?? '',
          );
        if (type === 'D') reply.rows.push(dataRow(body));
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  const startupBody = Buffer.concat([
    Buffer.from([0, 3, 0, 0]),
    cstr('user'),
    cstr('postgres'),
    Buffer.from([0]),
  ]);
  const startupLength = Buffer.alloc(4);
  startupLength.writeInt32BE(4 + startupBody.length);
  socket.write(Buffer.concat([startupLength, startupBody]));
  await untilReady();
  return { socket, write: (b) => socket.write(b), untilReady };
}

function dataRow(body: Buffer): (string | null)[] {
  const row: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    row.push(length < 0 ? null : body.toString('utf8', offset, offset + length));
    offset += Math.max(length, 0);
  }
  return row;
}
