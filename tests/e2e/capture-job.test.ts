import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CAPTURE_MIGRATIONS_DIR,
  CAPTURE_SCHEMA,
  claimJob,
  mergedStateFile,
  prepareCaptureJob,
  runCaptureJob,
} from '@loupe/capture';
import { SafetensorsReader } from '@loupe/common';
import { connect, runMigrations, type Sql } from '@loupe/common/db';
import { Gpt2Runner } from '@loupe/model';
import { buildRecords, RecordsThreads, readNeuronRecord, restoreAccumulator } from '@loupe/records';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';
import { REPO_ROOT, runCli } from '../support/process.js';

// `loupe capture` as a real process against the suite's database (its own process too), including a
// kill -9 in the middle of a job and the resumed run that must end identical to an uninterrupted one.
const HOOKS = ['blocks.1.mlp.hook_post', 'blocks.0.hook_resid_post'];
const ARGS = [
  '--dataset',
  'default',
  '--hooks',
  HOOKS.join(','),
  '--max-tokens',
  '9000',
  '--shard-windows',
  '8',
  '--checkpoint-shards',
  '2',
];

let db: TestDatabase;
let sql: Sql;
let modelDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-capture-job-'));
  modelDir = (await convertedFixture(FIXTURES.tiny)).modelDir;
  db = await startTestDatabase();
  env = {
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    ...databaseEnv(db),
    LOUPE_THREADS: '1',
  };
  sql = connect(db.url, { schema: CAPTURE_SCHEMA });
  await runMigrations(sql, { schema: CAPTURE_SCHEMA, dir: CAPTURE_MIGRATIONS_DIR });
});

afterAll(async () => {
  await sql?.end();
  await db?.stop();
});

async function capture(): Promise<{ job: string; resumed: boolean }> {
  const { code, stdout, stderr } = await runCli(['capture', '--model', modelDir, ...ARGS], env);
  expect(stderr).not.toMatch(/internal error/);
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout);
}

/** Starts a capture and kills it with SIGKILL once it has passed `percent`% of its tokens. */
async function captureKilledAt(percent: number): Promise<void> {
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'services/cli/dist/main.js'), 'capture', '--model', modelDir, ...ARGS],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(`capture: ${percent}%`)) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`capture ended before ${percent}%: ${stderr}`)));
  });
  await new Promise((resolve) => child.once('exit', resolve));
}

/** Per-neuron max, min, sum and positive count over every token of the given shard files. */
async function shardStatistics(files: string[]) {
  let stats: { max: Float64Array; min: Float64Array; sum: Float64Array; positive: Float64Array } | null =
    null;
  let tokens = 0;
  for (const file of files) {
    const reader = await SafetensorsReader.open(file);
    const activations = await reader.readFloat32('activations');
    const width = reader.tensors.get('activations')!.shape[1];
    await reader.close();
    stats ??= {
      max: new Float64Array(width).fill(Number.NEGATIVE_INFINITY),
      min: new Float64Array(width).fill(Number.POSITIVE_INFINITY),
      sum: new Float64Array(width),
      positive: new Float64Array(width),
    };
    for (let i = 0; i < activations.length; i++) {
      const [j, a] = [i % width, activations[i]];
      stats.max[j] = Math.max(stats.max[j], a);
      stats.min[j] = Math.min(stats.min[j], a);
      stats.sum[j] += a;
      if (a > 0) stats.positive[j]++;
    }
    tokens += activations.length / width;
  }
  return { ...stats!, tokens };
}

async function records(job: string) {
  const rows =
    await sql`SELECT hook, neuron, max_activation, min_activation, mean_activation, fraction_nonzero, tokens, histogram,
             top_windows, top_max, records_file FROM neuron_records WHERE job_id = ${job} ORDER BY hook, neuron`;
  // the full per-token records of a few neurons, read back from the job's record file
  const full = await Promise.all([0, 17, 255].map((n) => readNeuronRecord(rows[n].records_file, n)));
  return { rows: rows.map(({ records_file: _, ...row }) => row), full };
}

describe('job claiming', () => {
  it('gives a contested job to exactly one of several racing workers, and none while its heartbeat is fresh', async () => {
    const [{ id }] = await sql`
      INSERT INTO capture_jobs (id, model, model_sha256, dataset, hooks, max_tokens, params, params_key, total_windows,
                                total_tokens, windows_sha256)
      VALUES (gen_random_uuid(), 'm', 's', 'd', '{}', 1, '{}', 'race', 1, 1, 'h') RETURNING id`;
    const clients = Array.from({ length: 4 }, () => connect(db.url, { schema: 'capture', max: 1 }));
    try {
      const claims = await Promise.all(clients.map((client, i) => claimJob(client, id, `worker-${i}`)));
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await claimJob(sql, id, 'latecomer')).toBeNull();
      await sql`UPDATE capture_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = ${id}`;
      expect((await claimJob(sql, id, 'latecomer'))?.attempts).toBe(2);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
      await sql`DELETE FROM capture_jobs WHERE id = ${id}`;
    }
  });
});

describe('capture jobs', () => {
  let reference: { job: string };

  it('writes activation shards that equal a direct forward pass, and one record per neuron', async () => {
    reference = await capture();
    const [job] =
      await sql`SELECT status, phase, windows_done, total_windows, tokens_done FROM capture_jobs WHERE id = ${reference.job}`;
    expect(job).toMatchObject({ status: 'done', phase: 'done' });
    expect(Number(job.windows_done)).toBe(Number(job.total_windows));
    const shards =
      await sql`SELECT hook, shard, path, tokens, width FROM activation_shards WHERE job_id = ${reference.job} ORDER BY hook, shard`;
    expect(shards.reduce((n, s) => n + Number(s.tokens), 0)).toBe(2 * Number(job.tokens_done));
    const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    try {
      const shard = shards.find((s) => s.hook === HOOKS[0] && s.shard === 3)!;
      const reader = await SafetensorsReader.open(shard.path);
      const activations = await reader.readFloat32('activations');
      const ids = Array.from(await reader.readArray('token_ids'), Number);
      const offsets = Array.from(await reader.readArray('window_offsets'), Number);
      await reader.close();
      const [direct] = await runner.forward([
        { ids: ids.slice(offsets[0], offsets[1]), hooks: [HOOKS[0]], logits: false },
      ]);
      expect(
        maxAbsDiff(activations.subarray(0, direct.hooks.get(HOOKS[0])!.length), direct.hooks.get(HOOKS[0])!),
      ).toBeLessThan(1e-5);
    } finally {
      await runner.close();
    }
    const { rows, full } = await records(reference.job);
    expect(rows).toHaveLength(256); // d_mlp of the tiny model; resid_post gets shards only
    // every neuron's statistics (reduced inside the forward pass, or here for short windows) against
    // the same statistics recomputed in float64 from all of the hook's shards
    const stats = await shardStatistics(shards.filter((s) => s.hook === HOOKS[0]).map((s) => s.path));
    expect(stats.tokens).toBe(Number(job.tokens_done));
    for (const row of rows) {
      const j = row.neuron;
      expect(row.max_activation, `neuron ${j} max`).toBe(stats.max[j]);
      expect(row.min_activation, `neuron ${j} min`).toBe(stats.min[j]);
      expect(row.fraction_nonzero, `neuron ${j} fraction > 0`).toBeCloseTo(
        stats.positive[j] / stats.tokens,
        12,
      );
      expect(Math.abs(row.mean_activation - stats.sum[j] / stats.tokens), `neuron ${j} mean`).toBeLessThan(
        1e-5,
      );
    }
    const first = full[0];
    expect(first.top).toHaveLength(20);
    expect(first.top.map((t) => t.window)).toEqual(rows[0].top_windows);
    expect(first.random).toHaveLength(20);
    expect(first.quantiles).toHaveLength(4);
    expect(Math.max(...first.top[0].values)).toBeCloseTo(rows[0].max_activation, 5);
    expect(rows[0].histogram.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0);
    const [{ count }] =
      await sql`SELECT count(*)::int AS count FROM record_windows WHERE job_id = ${reference.job}`;
    expect(count).toBeGreaterThan(20);
  });

  it('builds the same records on worker threads as in process', async () => {
    const jobDir = path.join(env.LOUPE_DATA_DIR, 'capture', reference.job);
    // the job's work items' record states, merged: what its records pass started from
    const reader = await SafetensorsReader.open(mergedStateFile(jobDir, HOOKS[0]));
    const tensors = new Map<string, Float32Array | Float64Array | Int32Array>();
    for (const name of reader.tensors.keys()) {
      tensors.set(name, (await reader.readArray(name)) as Float32Array | Float64Array | Int32Array);
    }
    const restore = () => restoreAccumulator(256, (name) => tensors.get(name)!, reader.metadata);
    await reader.close();
    const task = (file: string) => ({
      dir: jobDir,
      hook: HOOKS[0],
      windowsPerShard: 8,
      file: path.join(jobDir, file),
      metadata: { hook: HOOKS[0] },
    });
    const threads = RecordsThreads.start(2);
    expect(threads, 'the built records thread module').not.toBeNull();
    try {
      const [inProcess, onThread] = [
        await buildRecords(restore(), task('in-process.safetensors')),
        await threads!.build(restore(), task('on-thread.safetensors')),
      ];
      expect(onThread).toEqual(inProcess);
      const [a, b] = await Promise.all(
        ['in-process', 'on-thread'].map((f) => fs.readFile(path.join(jobDir, `${f}.safetensors`))),
      );
      expect(Buffer.compare(a, b)).toBe(0);
      // and the job itself (records built on its threads) wrote the same file
      const jobFile = await fs.readFile(path.join(jobDir, 'records', `${HOOKS[0]}.safetensors`));
      const onlyData = (bytes: Buffer) => bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
      expect(Buffer.compare(onlyData(jobFile), onlyData(a))).toBe(0);
      // a failed build is reported with its reason, and the threads keep working
      const missing = { ...task('never.safetensors'), dir: path.join(jobDir, 'no-such-job') };
      await expect(threads!.build(restore(), missing)).rejects.toThrow(/no such file/);
      expect(await threads!.build(restore(), task('again.safetensors'))).toEqual(inProcess);
    } finally {
      await threads?.close();
    }
  });

  it('resumes after kill -9 and ends with exactly the records of an uninterrupted run', async () => {
    await captureKilledAt(50);
    const [killed] =
      await sql`SELECT id, status, windows_done, total_windows FROM capture_jobs WHERE id <> ${reference.job}`;
    expect(killed.status).toBe('running');
    expect(Number(killed.windows_done)).toBeGreaterThan(0);
    expect(Number(killed.windows_done)).toBeLessThan(Number(killed.total_windows));
    // a half-written shard as a kill can leave it
    const partial = path.join(
      env.LOUPE_DATA_DIR,
      'capture',
      killed.id,
      'shards',
      HOOKS[0],
      '000099.safetensors.tmp-1',
    );
    await fs.writeFile(partial, 'half a file');
    // the killed worker's heartbeat is still fresh: the rerun sees its process is gone and takes over
    const resumed = await capture();
    await expect(fs.access(partial)).rejects.toThrow();
    expect(resumed).toMatchObject({ job: killed.id, resumed: true });
    expect(await records(resumed.job)).toEqual(await records(reference.job));
    const count = async (job: string) =>
      (await sql`SELECT count(*)::int AS n FROM activation_shards WHERE job_id = ${job}`)[0].n;
    expect(await count(resumed.job)).toBe(await count(reference.job));
  });

  it('retires a job whose dataset changed under it, with a clear message', async () => {
    const dataset = path.join(os.tmpdir(), `loupe-changing-${process.pid}.jsonl`);
    const line = (text: string) => `${JSON.stringify({ text })}\n`;
    await fs.writeFile(dataset, line('The first document talks about ships and the sea. '.repeat(8)));
    const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    try {
      const request = { dataset, hooks: [HOOKS[0]], maxTokens: 100 };
      const { job } = await prepareCaptureJob(sql, runner, request);
      await fs.writeFile(dataset, line('A different document about mountains and snow. '.repeat(8)));
      await expect(
        runCaptureJob(sql, runner, job.id, { dataDir: env.LOUPE_DATA_DIR, worker: 'test' }),
      ).rejects.toThrow(/changed since capture job .* was planned; the job is retired/);
      const [row] = await sql`SELECT status FROM capture_jobs WHERE id = ${job.id}`;
      expect(row.status).toBe('cancelled');
      expect((await prepareCaptureJob(sql, runner, request)).resumed).toBe(false);
    } finally {
      await runner.close();
    }
  });

  it('captures attention head hooks (z) as one row of heads × d_head per position; refuses patterns', async () => {
    const hook = 'blocks.1.attn.hook_z';
    const args = [
      'capture',
      '--model',
      modelDir,
      '--dataset',
      'default',
      '--hooks',
      hook,
      '--max-tokens',
      '300',
    ];
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(0);
    const { job } = JSON.parse(run.stdout);
    const [shard] = await sql`
      SELECT path, width FROM activation_shards WHERE job_id = ${job} AND hook = ${hook} ORDER BY shard LIMIT 1`;
    const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    try {
      expect(shard.width).toBe(runner.manifest.dims.dModel); // n_head · d_head
      const reader = await SafetensorsReader.open(shard.path);
      const activations = await reader.readFloat32('activations');
      const ids = Array.from(await reader.readArray('token_ids'), Number);
      const offsets = Array.from(await reader.readArray('window_offsets'), Number);
      await reader.close();
      const [direct] = await runner.forward([
        { ids: ids.slice(offsets[0], offsets[1]), hooks: [hook], logits: false },
      ]);
      const z = direct.hooks.get(hook)!; // [pos, head, d_head], row-major: the heads side by side per position
      expect(maxAbsDiff(activations.subarray(0, z.length), z)).toBeLessThan(1e-5);
    } finally {
      await runner.close();
    }
    const pattern = await runCli([...args.slice(0, 5), '--hooks', 'blocks.1.attn.hook_pattern'], env);
    expect(pattern.code).toBe(2);
    expect(pattern.stderr).toMatch(
      /hook "blocks.1.attn.hook_pattern" cannot be used for a capture job: it is \[head, query, key\]/,
    );
  });

  it('refuses bad arguments with clear messages', async () => {
    const badHook = await runCli(
      ['capture', '--model', modelDir, '--hooks', 'blocks.5.mlp.hook_post', '--max-tokens', '100'],
      env,
    );
    expect(badHook.code).toBe(2);
    expect(badHook.stderr).toMatch(/unknown hook "blocks.5.mlp.hook_post"/);
    const badDataset = await runCli(
      ['capture', '--model', modelDir, '--dataset', '/nonexistent.jsonl', '--hooks', HOOKS[0]],
      env,
    );
    expect(badDataset.code).toBe(2);
    expect(badDataset.stderr).toMatch(/dataset "\/nonexistent.jsonl" does not exist/);
  });
});
