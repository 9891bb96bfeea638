import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { connect, type SpawnedEmbeddedPostgres, type Sql, spawnEmbeddedPostgres } from '@loupe/common/db';
import { type ExplainerApi, explainerServiceClient } from '@loupe/common/grpc';
import { readSaeLens, trainingJobDir } from '@loupe/sae';
import { randomDictionary, SparseMixSource } from '@loupe/sae/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { type CaptureApi, captureClient, type SaeApi, saeClient } from '../support/grpc.js';
import { healthCheck, until } from '../support/health.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// Faults against the real processes: each service is kill -9'd in the middle of its kind of job and
// started again, and the embedded Postgres is restarted while the gateway serves reads. Jobs must end
// with nothing lost and nothing twice; clients must see clear UNAVAILABLE errors while the database is
// down and answers again after, and no process may die of it.

const HOOK = 'blocks.1.mlp.hook_post';
const D_MLP = 256;
const ENTRIES = {
  capture: 'services/capture/dist/main.js',
  sae: 'services/sae/dist/main.js',
  explainer: 'services/explainer/dist/main.js',
  gateway: 'services/gateway/dist/bin.js',
} as const;
type Name = keyof typeof ENTRIES;

let scratch: string;
let pgDir: string;
let pgPort: number;
let pg: SpawnedEmbeddedPostgres;
let env: Record<string, string>;
const running = new Map<Name, RunningProcess>();
const sqls: Sql[] = [];

/** Starts the service unless it runs already (a test may find it running from the one before). */
function start(name: Name): RunningProcess {
  const already = running.get(name);
  if (already) return already;
  const process = startProcess(ENTRIES[name], env);
  running.set(name, process);
  return process;
}

async function kill9(name: Name): Promise<void> {
  await running.get(name)?.stop('SIGKILL');
  running.delete(name);
}

function database(schema: string): Sql {
  const sql = connect(pg.url, { schema });
  sqls.push(sql);
  return sql;
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-faults-'));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  // An embedded Postgres of its own even when LOUPE_TEST_DATABASE_URL names a real server: the test
  // stops and restarts the database in the middle of jobs, which on a real server would take
  // `pg_ctl restart` (and its data directory), more than startTestDatabase can do today.
  pgDir = path.join(scratch, 'pg');
  pgPort = await freePort();
  pg = await spawnEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  env = {
    LOUPE_DATA_DIR: dataDir,
    // a configured database: each service resumes interrupted jobs as soon as it starts
    DATABASE_URL: pg.url,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(await freePort()),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
  };
}, 120_000);

afterAll(async () => {
  for (const name of [...running.keys()].reverse()) await running.get(name)?.stop();
  await Promise.all(sqls.map((sql) => sql.end()));
  await pg?.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('kill -9 in the middle of a job', () => {
  let captureJob: string;

  it('capture: the restarted service finishes the job with every window once and a record per neuron', async () => {
    start('capture');
    let capture: CaptureApi = await captureClient(env.LOUPE_CAPTURE_ADDR);
    const job = await capture.StartCapture({
      model: 'tiny',
      dataset: 'default',
      hooks: [HOOK],
      maxTokens: 12_000,
    });
    captureJob = job.id;
    const midway = await until(
      () => capture.GetCaptureJob({ id: job.id }),
      (j) => j.windowsDone > 0 || j.status !== 'queued',
      'capture job under way',
      { everyMs: 20 },
    );
    expect(midway.status).toBe('running');
    expect(midway.windowsDone).toBeLessThan(midway.totalWindows);
    await kill9('capture');
    capture.close();

    start('capture');
    capture = await captureClient(env.LOUPE_CAPTURE_ADDR);
    const done = await until(
      () => capture.GetCaptureJob({ id: job.id }),
      (j) => j.status !== 'running' && j.status !== 'queued',
      'resumed capture job',
    );
    capture.close();
    expect(done).toMatchObject({ status: 'done', phase: 'done' });
    expect(done.windowsDone).toBe(done.totalWindows);
    expect(Number(done.tokensDone)).toBe(Number(done.totalTokens));

    const sql = database('capture');
    const [records] = await sql`
      SELECT count(*)::int AS n, count(DISTINCT neuron)::int AS neurons, min(neuron) AS lo, max(neuron) AS hi
      FROM neuron_records WHERE job_id = ${job.id} AND hook = ${HOOK}`;
    expect(records).toEqual({ n: D_MLP, neurons: D_MLP, lo: 0, hi: D_MLP - 1 });
    // every window in the shards exactly once: their tokens add up to the job's, no shard twice
    const shards = await sql`
      SELECT shard, tokens FROM activation_shards WHERE job_id = ${job.id} AND hook = ${HOOK} ORDER BY shard`;
    expect(new Set(shards.map((s) => s.shard)).size).toBe(shards.length);
    expect(shards.map((s) => s.shard)).toEqual(shards.map((_, i) => i));
    expect(shards.reduce((n, s) => n + Number(s.tokens), 0)).toBe(Number(done.tokensDone));
  }, 180_000);

  it('sae: the restarted service resumes training from its checkpoint and ends with the weights of an uninterrupted run', async () => {
    const D = 32;
    const rows = 8192;
    const file = path.join(env.LOUPE_DATA_DIR, 'vectors.safetensors');
    const mix = { activeProbability: 4 / 128, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 };
    const data = new SparseMixSource(randomDictionary(D, 128, 11), mix, 12).batch(rows);
    await writeSafetensors(file, [{ name: 'activations', dtype: 'F32', shape: [rows, D], data }]);
    const train = (saeId: string) => ({
      activationsFile: file,
      hook: 'blocks.0.hook_resid_post',
      architecture: 'topk',
      width: 128,
      k: 8,
      steps: 300,
      batchSize: 256,
      lr: 3e-3,
      seed: 5,
      checkpointEvery: 20,
      saeId,
    });
    start('sae');
    let sae: SaeApi = await saeClient(env.LOUPE_SAE_ADDR);
    const finished = (j: { status: string }) => j.status !== 'running' && j.status !== 'queued';

    const reference = await sae.Train(train('uninterrupted'));
    const referenceDone = await until(() => sae.GetTrainingJob({ id: reference.id }), finished, 'reference');
    expect(referenceDone.status).toBe('done');

    const job = await sae.Train(train('resumed'));
    const checkpointed = await until(
      () => sae.GetTrainingJob({ id: job.id }),
      (j) => j.checkpointStep > 0 || finished(j),
      'first checkpoint',
      { everyMs: 20 },
    );
    expect(checkpointed.status).toBe('running');
    expect(checkpointed.step).toBeLessThan(checkpointed.steps);
    await kill9('sae');
    sae.close();

    start('sae');
    sae = await saeClient(env.LOUPE_SAE_ADDR);
    const done = await until(() => sae.GetTrainingJob({ id: job.id }), finished, 'resumed training');
    sae.close();
    expect(done).toMatchObject({ status: 'done', step: 300, saeId: 'resumed' });
    const weights = async (id: string) =>
      (await readSaeLens(path.join(trainingJobDir(env.LOUPE_DATA_DIR, id), 'sae'))).weights;
    const [a, b] = [await weights(reference.id), await weights(job.id)];
    for (const name of ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const)
      expect(Buffer.from(b[name].buffer).equals(Buffer.from(a[name].buffer)), name).toBe(true);
  }, 240_000);

  it('explainer: the restarted service scores every unit of the job exactly once', async () => {
    expect(captureJob).toBeDefined();
    start('explainer');
    let explainer: ExplainerApi = explainerServiceClient(env.LOUPE_EXPLAINER_ADDR);
    await explainer.ready(60_000);
    const job = await explainer.StartScoringJob({
      units: `tiny/${HOOK}/0-${D_MLP - 1}`,
      method: 'detection',
      concurrency: 2,
      seed: 1,
    });
    const midway = await until(
      () => explainer.GetJob({ id: job.id }),
      (j) => j.unitsDone >= 3 || j.status !== 'queued',
      'scoring under way',
      { everyMs: 10 },
    );
    expect(midway.unitsDone).toBeLessThan(D_MLP);
    await kill9('explainer');
    explainer.close();
    // the dead worker's leases would run out after a minute; the takeover itself is what is tested here
    const sql = database('explainer');
    await sql`
      UPDATE scoring_job_units SET lease_until = now() - interval '1 second'
      WHERE job_id = ${job.id} AND status = 'running'`;

    start('explainer');
    explainer = explainerServiceClient(env.LOUPE_EXPLAINER_ADDR);
    await explainer.ready(60_000);
    const done = await until(
      () => explainer.GetJob({ id: job.id }),
      (j) => !['queued', 'running'].includes(j.status),
      'resumed scoring job',
    );
    explainer.close();
    expect(done).toMatchObject({ status: 'done', unitsTotal: D_MLP, unitsDone: D_MLP, unitsFailed: 0 });
    const units = await sql`
      SELECT u.unit, u.status, count(e.id)::int AS explanations
      FROM scoring_job_units u LEFT JOIN explanations e ON e.unit = u.unit
      WHERE u.job_id = ${job.id} GROUP BY u.unit, u.status`;
    expect(units).toHaveLength(D_MLP);
    expect(units.filter((u) => u.status !== 'done' || u.explanations !== 1)).toEqual([]);
  }, 240_000);
});

describe('the database restarts under load', () => {
  it('gives clear UNAVAILABLE errors while Postgres is down, answers again after, and no process dies', async () => {
    start('capture');
    const gateway = start('gateway');
    const url = `http://127.0.0.1:${env.LOUPE_GATEWAY_PORT}/graphql`;
    const read = async (n: number) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'query ($id: ID!) { unit(id: $id) { id stats { maxActivation } } }',
          variables: { id: `tiny/${HOOK}/${n % D_MLP}` },
        }),
      });
      return (await response.json()) as {
        data?: { unit: { id: string } | null };
        errors?: { message: string; extensions?: { code?: string } }[];
      };
    };
    await until(
      () => read(0).catch(() => ({ errors: [] })),
      (a) => !a.errors && Boolean(a.data?.unit),
      'gateway reads',
    );

    // clients keep reading throughout; what each answer was is kept for the checks below
    const answers: { phase: string; code: string; message?: string }[] = [];
    let phase = 'up';
    let stop = false;
    const clients = Array.from({ length: 4 }, async (_, c) => {
      for (let i = c; !stop; i += 4) {
        const answer = await read(i);
        const error = answer.errors?.[0];
        const code = error?.extensions?.code ?? (answer.data?.unit ? 'OK' : 'NULL');
        answers.push({ phase, code, message: error?.message });
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    phase = 'down';
    await pg.stop();
    await until(
      async () => answers.filter((a) => a.phase === 'down' && a.code !== 'OK').length,
      (n) => n >= 8,
      'errors while the database is down',
      { timeoutMs: 60_000 },
    );
    phase = 'restarting';
    pg = await spawnEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
    phase = 'back';
    await until(
      async () => answers.filter((a) => a.phase === 'back' && a.code === 'OK').length,
      (n) => n >= 8,
      'reads after the database is back',
      { timeoutMs: 60_000 },
    );
    stop = true;
    await Promise.all(clients);

    expect(answers.filter((a) => a.phase === 'up').every((a) => a.code === 'OK')).toBe(true);
    const down = answers.filter((a) => a.phase === 'down' && a.code !== 'OK');
    expect(new Set(down.map((a) => a.code)), JSON.stringify(down.slice(0, 3))).toEqual(
      new Set(['UNAVAILABLE']),
    );
    // clear, and without internal detail (addresses, driver messages)
    for (const a of down) expect(a.message).not.toMatch(/internal error|127\.0\.0\.1|ECONN/);
    for (const [name, process] of running)
      expect(process.child.exitCode, `${name} exited:\n${process.stderr().slice(-3000)}`).toBeNull();
    expect(gateway.child.exitCode).toBeNull();
    expect(await healthCheck(env.LOUPE_CAPTURE_ADDR)).toEqual({ status: 'SERVING' });
  }, 240_000);
});
