import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA } from '@loupe/capture';
import { connect, runMigrations, type Sql } from '@loupe/common/db';
import { createJob, EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA, syntheticUnit } from '@loupe/explainer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type LlmServer, type RecordedRequest, startLlmServer } from '../support/llm-server.js';
import { convertedFixture } from '../support/model.js';
import { REPO_ROOT, runCli } from '../support/process.js';

// Several worker processes sharing one job, on the suite's database (the embedded server, and the real
// PostgreSQL in CI's second pass), one of them killed with SIGKILL while it holds work: the job ends as
// if one process had run it. On a real server, the server itself is also restarted mid-job.

const CLI = path.join(REPO_ROOT, 'services/cli/dist/main.js');
const HOOKS = ['blocks.1.mlp.hook_post', 'blocks.0.hook_resid_post'];
const CAPTURE_ARGS = [
  ...['--dataset', 'default', '--hooks', HOOKS.join(','), '--max-tokens', '24000'],
  // small items (4 windows, one shard each), so that three workers interleave and a kill lands mid-item
  ...['--shard-windows', '4', '--checkpoint-shards', '1'],
];
const hostname = os.hostname();

let db: TestDatabase;
let scratch: string;
let modelDir: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-many-workers-'));
  modelDir = (await convertedFixture(FIXTURES.tiny)).modelDir;
  db = await startTestDatabase();
});

afterAll(async () => {
  await db?.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

interface Worker {
  child: ChildProcess;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startWorker(args: string[], env: Record<string, string>): Worker {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exit };
}

/** Polls `query` until it returns a row, then returns it (or fails after `ms`). */
async function waitForRow<T>(query: () => Promise<T[]>, what: string, ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    const [row] = await query();
    if (row) return row;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Freezes `worker` (SIGSTOP) at a moment it holds work, and returns what it holds: frozen, what it
 * holds cannot change (nor can it finish the whole job before other workers join, as a fast worker on a
 * fast database would). The look must answer at once: the embedded server serves one client's
 * transaction at a time, so a worker frozen inside one would hold every other client up; then, and
 * between two pieces of work, it is let go on for a moment and frozen again.
 */
async function freezeHolding<T>(worker: Worker, held: () => Promise<T[]>): Promise<T[]> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    worker.child.kill('SIGSTOP');
    const look = held();
    look.catch(() => {});
    const rows = await Promise.race([
      look,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 1000)),
    ]);
    if (rows && rows.length > 0) return rows;
    worker.child.kill('SIGCONT');
    await (rows ? new Promise((resolve) => setTimeout(resolve, 5)) : look.catch(() => {}));
  }
  throw new Error('the worker never held work when looked at');
}

async function kill(worker: Worker): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exit;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** A safetensors file's tensor bytes: its header names the job, which differs between runs. */
const tensorBytes = (bytes: Buffer) => bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));

/** Everything a capture job produced, less the job's id: record rows, record files and shard files. */
async function captureOutputs(sql: Sql, job: string) {
  const rows = await sql`
    SELECT hook, neuron, max_activation, min_activation, mean_activation, fraction_nonzero, tokens, histogram,
           top_windows, top_max, records_file
    FROM neuron_records WHERE job_id = ${job} ORDER BY hook, neuron`;
  const files = [...new Set(rows.map((r) => r.records_file as string))];
  const shards = await sql`
    SELECT hook, shard, path, first_window, windows, tokens, width FROM activation_shards
    WHERE job_id = ${job} ORDER BY hook, shard`;
  return {
    rows: rows.map(({ records_file: _, ...row }) => row),
    recordFiles: await Promise.all(files.map(async (f) => sha256(tensorBytes(await fs.readFile(f))))),
    shards: shards.map(({ path: _, ...row }) => row),
    shardFiles: await Promise.all(shards.map(async (s) => sha256(tensorBytes(await fs.readFile(s.path))))),
  };
}

async function captureDatabase(url: string): Promise<Sql> {
  const sql = connect(url, { schema: CAPTURE_SCHEMA });
  await runMigrations(sql, { schema: CAPTURE_SCHEMA, dir: CAPTURE_MIGRATIONS_DIR });
  return sql;
}

describe('capture jobs shared by worker processes', () => {
  let sql: Sql;
  let env: Record<string, string>;
  let reference: Awaited<ReturnType<typeof captureOutputs>>;

  beforeAll(async () => {
    sql = await captureDatabase(db.url);
    env = { LOUPE_DATA_DIR: path.join(scratch, 'capture'), ...databaseEnv(db), LOUPE_THREADS: '1' };
    const single = await runCli(['capture', '--model', modelDir, ...CAPTURE_ARGS], env);
    expect(single.code, single.stderr).toBe(0);
    reference = await captureOutputs(sql, JSON.parse(single.stdout).job);
    expect(reference.rows).toHaveLength(256);
  });

  afterAll(async () => {
    await sql?.end();
  });

  it('three workers, one killed mid-item: the records and shards are byte-identical to one worker', async () => {
    const args = ['capture', '--model', modelDir, ...CAPTURE_ARGS];
    // the victim starts first and is frozen holding an item; the other two join, and once one of them
    // holds an item too the victim is killed
    const victim = startWorker(args, env);
    const victimName = `${hostname}:${victim.child.pid}`;
    const holding = () => sql<{ job_id: string; item: number }[]>`
      SELECT job_id, item FROM capture_work_items WHERE worker = ${victimName} AND status = 'running'`;
    await waitForRow(holding, 'the victim to lease an item');
    const [taken] = await freezeHolding(victim, holding);
    const jobId = taken.job_id;
    const others = [0, 1].map(() => startWorker(args, env));
    await waitForRow(
      () => sql`
        SELECT 1 FROM capture_work_items
        WHERE job_id = ${jobId} AND status = 'running' AND worker <> ${victimName}`,
      'another worker to lease an item',
    );
    await kill(victim);
    const survivors = await Promise.all(others.map((w) => w.exit));
    for (const s of survivors) expect(s.code, s.stderr).toBe(0);
    const jobs = survivors.map((s) => JSON.parse(s.stdout).job);
    expect(jobs).toEqual([jobId, jobId]);

    const [job] = await sql`SELECT status, windows_done, total_windows FROM capture_jobs WHERE id = ${jobId}`;
    expect(job.status).toBe('done');
    expect(Number(job.windows_done)).toBe(Number(job.total_windows));
    const items = await sql`
      SELECT item, status, worker, attempts FROM capture_work_items WHERE job_id = ${jobId} ORDER BY item`;
    expect(items.every((i) => i.status === 'done')).toBe(true);
    // the item the worker was killed in was leased again and finished by a survivor
    const redone = items.find((i) => i.item === taken.item)!;
    expect(redone.worker).not.toBe(victimName);
    expect(redone.attempts).toBeGreaterThanOrEqual(2);
    expect(new Set(items.map((i) => i.worker)).size).toBeGreaterThanOrEqual(2);

    expect(await captureOutputs(sql, jobId)).toEqual(reference);
  });

  it('items of one hook each (window ranges × hook groups) give the same outputs', async () => {
    const args = ['capture', '--model', modelDir, ...CAPTURE_ARGS, '--item-hooks', '1'];
    const runs = await Promise.all([0, 1].map(() => startWorker(args, env).exit));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const job = JSON.parse(runs[0].stdout).job;
    const [{ groups }] = await sql`
      SELECT count(DISTINCT hooks)::int AS groups FROM capture_work_items WHERE job_id = ${job}`;
    expect(groups).toBe(HOOKS.length);
    expect(await captureOutputs(sql, job)).toEqual(reference);
  });
});

// A scoring job's units explained through a local LLM server with a little latency, so that three
// processes interleave. Usage is counted per request from its text (characters / 4), so a job's cost
// is the same whoever scores its units, as long as each unit's requests are counted once.
function slowBeliever(request: RecordedRequest) {
  const explanation = /Explanation: (.*)\n/.exec(request.lastUser)?.[1] ?? '';
  const named = new Set([...explanation.matchAll(/"([^"]*)"/g)].map((m) => m[1]));
  if (request.body.response_format) {
    const { sequences } = JSON.parse(request.lastUser.slice(request.lastUser.indexOf('\n') + 1));
    return {
      delayMs: 100,
      content: JSON.stringify({
        sequences: sequences.map((s: { tokens: string[] }) => ({
          activations: s.tokens.map((token) => ({ token, activation: named.has(token.trim()) ? 10 : 0 })),
        })),
      }),
    };
  }
  return { delayMs: 100, content: 'Explanation: the word "river".' };
}

describe('scoring jobs shared by worker processes', () => {
  const UNITS = 24;
  let sql: Sql;
  let llm: LlmServer;
  let env: Record<string, string>;
  let recordsDir: string;

  beforeAll(async () => {
    sql = connect(db.url, { schema: EXPLAINER_SCHEMA });
    await runMigrations(sql, { schema: EXPLAINER_SCHEMA, dir: EXPLAINER_MIGRATIONS_DIR });
    llm = await startLlmServer({ respond: slowBeliever });
    env = { LOUPE_DATA_DIR: path.join(scratch, 'explainer'), ...databaseEnv(db), LOUPE_LLM_BASE_URL: '' };
    recordsDir = path.join(scratch, 'records');
    const hookDir = path.join(recordsDir, 'tiny', 'blocks.0.mlp.hook_post');
    await fs.mkdir(hookDir, { recursive: true });
    for (let i = 0; i < UNITS; i++) {
      const records = syntheticUnit({ seed: i, firesOn: i % 2 === 0 ? ' river' : undefined, records: 6 });
      await fs.writeFile(path.join(hookDir, `${i}.json`), JSON.stringify(records));
    }
  });

  afterAll(async () => {
    await sql?.end();
    await llm?.close();
  });

  const newJob = () =>
    createJob(sql, {
      units: Array.from({ length: UNITS }, (_, i) => `tiny/blocks.0.mlp.hook_post/${i}`),
      method: 'simulation',
      llm: { baseUrl: llm.url, model: 'local', simulator: 'json' },
      budgetTokens: 0,
      concurrency: 2,
      seed: 3,
      maxAttempts: 3,
      prices: { promptUsdPerMillion: 1, completionUsdPerMillion: 2 },
    });
  const totals = async (job: string) =>
    (
      await sql`
        SELECT status, units_done, units_failed, prompt_tokens, completion_tokens, llm_calls
        FROM scoring_jobs WHERE id = ${job}`
    )[0];

  it('three workers, one killed mid-unit: every unit scored once, none lost, the cost of one worker', async () => {
    const args = (job: string) => ['jobs', 'score', '--job', job, '--records-dir', recordsDir];
    const alone = await newJob();
    const single = await runCli(args(alone), env);
    expect(single.code, single.stderr).toBe(0);
    const expected = await totals(alone);
    expect(expected).toMatchObject({ status: 'done', units_done: UNITS, units_failed: 0 });

    const shared = await newJob();
    // the victim starts first and is frozen holding a unit; the other two join, and once one of them
    // holds a unit too the victim is killed
    const victim = startWorker(args(shared), env);
    const victimName = `${hostname}:${victim.child.pid}`;
    const holding = () => sql<{ unit: string }[]>`
      SELECT unit FROM scoring_job_units WHERE job_id = ${shared} AND worker = ${victimName} AND status = 'running'`;
    await waitForRow(holding, 'the victim to claim a unit');
    const [killedIn] = await freezeHolding(victim, holding);
    const others = [0, 1].map(() => startWorker(args(shared), env));
    await waitForRow(
      () => sql`
        SELECT 1 FROM scoring_job_units WHERE job_id = ${shared} AND status = 'running' AND worker <> ${victimName}`,
      'another worker to claim a unit',
    );
    await kill(victim);
    for (const s of await Promise.all(others.map((w) => w.exit))) expect(s.code, s.stderr).toBe(0);

    expect(await totals(shared)).toEqual(expected);
    const units = await sql`
      SELECT unit, status, worker, attempts, explanation_id FROM scoring_job_units WHERE job_id = ${shared}`;
    expect(units.filter((u) => u.status === 'done')).toHaveLength(UNITS);
    // one stored explanation per unit, and every job unit points at a distinct one
    expect(new Set(units.map((u) => u.explanation_id)).size).toBe(UNITS);
    const [{ n }] = await sql`
      SELECT count(*)::int AS n FROM explanations WHERE id IN ${sql(units.map((u) => u.explanation_id))}`;
    expect(n).toBe(UNITS);
    const redone = units.find((u) => u.unit === killedIn.unit)!;
    expect(redone.worker).not.toBe(victimName);
    expect(redone.attempts).toBeGreaterThanOrEqual(2);
  });
});

// Restarting the server needs one of our own: only where CI provides real PostgreSQL (its second pass).
const realServer = Boolean(process.env.LOUPE_TEST_DATABASE_URL);
const postgresScript = path.join(REPO_ROOT, '.ci/postgres.sh');
const run = promisify(execFile);

describe.runIf(realServer)('capture workers across a PostgreSQL restart', () => {
  let clusterDir: string;
  let url: string;

  beforeAll(async () => {
    // outside the suite's private scratch folder: the cluster belongs to the postgres user
    clusterDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-pg-restart-'));
    url = (await run('bash', [postgresScript, 'start', clusterDir], { timeout: 120_000 })).stdout.trim();
  }, 180_000);

  afterAll(async () => {
    if (clusterDir) await run('bash', [postgresScript, 'stop', clusterDir]).catch(() => {});
  });

  it('two workers reconnect after `pg_ctl restart` mid-job and finish with the records of one run', async () => {
    const env = { LOUPE_DATA_DIR: path.join(scratch, 'restart'), DATABASE_URL: url, LOUPE_THREADS: '1' };
    const sql = await captureDatabase(url);
    try {
      const single = await runCli(['capture', '--model', modelDir, ...CAPTURE_ARGS], env);
      expect(single.code, single.stderr).toBe(0);
      const reference = await captureOutputs(sql, JSON.parse(single.stdout).job);

      const workers = [0, 1].map(() => startWorker(['capture', '--model', modelDir, ...CAPTURE_ARGS], env));
      const started = await waitForRow(
        () => sql<{ job_id: string }[]>`
          SELECT i.job_id FROM capture_work_items i JOIN capture_jobs j ON j.id = i.job_id
          WHERE j.status = 'running' AND i.status = 'done'`,
        'the shared job to finish an item',
      );
      await run('bash', [postgresScript, 'restart', clusterDir], { timeout: 60_000 });
      for (const s of await Promise.all(workers.map((w) => w.exit))) expect(s.code, s.stderr).toBe(0);
      const [job] = await sql`SELECT status FROM capture_jobs WHERE id = ${started.job_id}`;
      expect(job.status).toBe('done');
      expect(await captureOutputs(sql, started.job_id)).toEqual(reference);
    } finally {
      await sql.end();
    }
  });
});
