import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import type { TrainRequest } from '@loupe/common/grpc';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomDictionary, SparseMixSource } from '../../testing/synthetic.js';
import { WEIGHTS_FILE } from '../format/saelens.js';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '../store/migrations.js';
import { saeDir } from '../store/sae-library.js';
import { runTrainingJob } from './run-training-job.js';
import {
  cancelTrainingJob,
  claimTrainingJob,
  createTrainingJob,
  getTrainingJob,
  getTrainingJobRow,
} from './training-job-store.js';

// Training jobs on the embedded Postgres: the row's lifecycle, one worker per job, and a resume after a
// crash that ends with the same weights as an uninterrupted job.
const db = withTestDatabase({ beforeAll, afterAll }, { schema: SAE_SCHEMA, migrations: SAE_MIGRATIONS_DIR });
let dataDir: string;
const D = 16;

beforeAll(async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-jobs-'));
  dataDir = path.join(root, 'data');
  await fs.mkdir(path.join(dataDir, 'acts'), { recursive: true });
  const source = new SparseMixSource(
    randomDictionary(D, 48, 1),
    { activeProbability: 3 / 48, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    2,
  );
  await writeSafetensors(path.join(dataDir, 'acts', 'vectors.safetensors'), [
    { name: 'x', dtype: 'F32', shape: [3000, D], data: source.batch(3000).map((v) => v * 5) },
  ]);
});

const request: TrainRequest = {
  activationsFile: 'acts/vectors.safetensors',
  architecture: 'topk',
  width: 48,
  k: 4,
  steps: 40,
  batchSize: 128,
  lr: 5e-3,
  seed: 7,
  checkpointEvery: 10,
};

const run = (id: string, worker: string, onProgress?: (step: number) => void) =>
  runTrainingJob(db.sql, id, {
    dataDir,
    worker,
    device: 'cpu',
    intraOpThreads: 1,
    onProgress: onProgress ? (p) => onProgress(p.step) : undefined,
    defaults: {
      shuffleCapacity: 1024,
      normaliseVectors: 1024,
      deadWindowTokens: 1280,
      heldOutFraction: 0.1,
      evalVectors: 300,
    },
  });

async function weights(id: string): Promise<Buffer> {
  return fs.readFile(path.join(saeDir(dataDir, id), WEIGHTS_FILE));
}

describe('SAE training jobs', () => {
  it('go queued → running → done, and put the SAE, its features and metrics into the library', async () => {
    const job = await createTrainingJob(db.sql, { ...request, saeId: 'lifecycle' });
    expect(job).toMatchObject({
      status: 'queued',
      phase: 'train',
      step: 0,
      steps: 40,
      saeId: '',
      checkpointStep: 0,
    });
    // an identical request while the first is unfinished shares its job
    expect((await createTrainingJob(db.sql, { ...request, saeId: 'lifecycle' })).id).toBe(job.id);

    const done = await run(job.id, 'worker-a');
    expect(done).toMatchObject({
      status: 'done',
      phase: 'done',
      step: 40,
      steps: 40,
      checkpointStep: 40,
      saeId: 'lifecycle',
      error: '',
    });
    // batches at an epoch's end are short, so a little under 40 full ones
    expect(done.tokens).toBeGreaterThan(38 * 128);
    expect(done.tokens).toBeLessThanOrEqual(40 * 128);
    expect(done.loss).toBeGreaterThan(0);
    expect(await getTrainingJob(db.sql, job.id)).toEqual(done);

    const [sae] =
      await db.sql`SELECT trained_as, metrics, training_job_id, d_sae FROM saes WHERE id = 'lifecycle'`;
    expect(sae.trained_as).toBe('topk');
    expect(sae.training_job_id).toBe(job.id);
    expect(sae.metrics.vectors).toBe(300);
    expect(sae.metrics.fvu).toBeGreaterThan(0);
    expect(sae.metrics.fvu).toBeLessThan(0.6);
    expect(sae.metrics.l0).toBeLessThanOrEqual(4);
    expect(sae.metrics.activityWindowTokens).toBe(1280);
    expect(sae.metrics).toHaveProperty('denseFraction');
    const [{ count }] = await db.sql`SELECT count(*)::int AS count FROM features WHERE sae_id = 'lifecycle'`;
    expect(count).toBe(48);

    // a finished job is not run again; a new identical request now makes a new job
    expect((await run(job.id, 'worker-b')).status).toBe('done');
    await expect(createTrainingJob(db.sql, { ...request, saeId: 'lifecycle' })).rejects.toThrow(
      /already in the library/,
    );
  });

  it('cannot be claimed by a second worker while the first is alive', async () => {
    const job = await createTrainingJob(db.sql, { ...request, seed: 8, saeId: 'contended' });
    // a live worker on another host, heartbeat fresh
    expect(await claimTrainingJob(db.sql, job.id, 'other-host:1')).not.toBeNull();
    expect(await claimTrainingJob(db.sql, job.id, 'worker-b')).toBeNull();
    await expect(run(job.id, 'worker-b')).rejects.toThrow(/being run by other-host:1/);
    expect((await getTrainingJobRow(db.sql, job.id)).worker).toBe('other-host:1');
    // once its heartbeat is older than 30 s the worker counts as dead and the job can be taken over
    await db.sql`UPDATE training_jobs SET heartbeat_at = now() - interval '31 seconds' WHERE id = ${job.id}`;
    expect((await claimTrainingJob(db.sql, job.id, 'worker-b'))?.worker).toBe('worker-b');
  });

  it('resumes after its worker died, from the checkpoint, with the weights of an uninterrupted job', async () => {
    const job = await createTrainingJob(db.sql, { ...request, saeId: 'crashed' });
    await expect(
      run(job.id, 'worker-c', (step) => {
        if (step === 15) throw new Error('simulated crash');
      }),
    ).rejects.toThrow(/simulated crash/);
    const failed = await getTrainingJobRow(db.sql, job.id);
    expect(failed).toMatchObject({ status: 'failed', phase: 'train', checkpointStep: 10 });
    expect(failed.step).toBeGreaterThanOrEqual(10);

    // As kill -9 leaves it: still 'running', fresh heartbeat, held by a process of this host that is gone.
    const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
    const deadWorker = `${os.hostname()}:${deadPid}`;
    await db.sql`UPDATE training_jobs SET status = 'running', worker = ${deadWorker}, heartbeat_at = now() WHERE id = ${job.id}`;

    const steps: number[] = [];
    const done = await run(job.id, 'worker-d', (step) => steps.push(step));
    expect(steps[0]).toBe(11);
    expect(done).toMatchObject({ status: 'done', phase: 'done', step: 40, saeId: 'crashed' });
    expect((await getTrainingJobRow(db.sql, job.id)).attempts).toBe(2);
    // same request but the SAE id: the weights must be byte-identical to the uninterrupted job's
    expect((await weights('crashed')).equals(await weights('lifecycle'))).toBe(true);
  });

  it('is queued again when asked for again after it failed, keeping its id', async () => {
    const job = await createTrainingJob(db.sql, { ...request, seed: 9, saeId: 'flaky' });
    await db.sql`UPDATE training_jobs SET status = 'failed', error = 'disk full' WHERE id = ${job.id}`;
    const again = await createTrainingJob(db.sql, { ...request, seed: 9, saeId: 'flaky' });
    expect(again).toMatchObject({ id: job.id, status: 'queued', error: '' });
  });

  it('stops at its next progress write once cancelled, keeps a consistent checkpoint, and a new request starts anew', async () => {
    const job = await createTrainingJob(db.sql, { ...request, seed: 10, saeId: 'cancelled' });
    let cancelling: Promise<unknown> | null = null;
    const steps: number[] = [];
    const ended = await run(job.id, 'worker-e', (step) => {
      steps.push(step);
      if (step === 12) cancelling = cancelTrainingJob(db.sql, job.id);
    });
    await cancelling;
    expect(ended).toMatchObject({ id: job.id, status: 'cancelled', error: 'cancelled on request' });
    // noticed at the latest at the step-20 checkpoint's write; never trained to the end
    expect(Math.max(...steps)).toBeLessThan(40);
    const row = await getTrainingJobRow(db.sql, job.id);
    expect(row.checkpointStep).toBeLessThanOrEqual(20);
    // no progress after the cancel is recorded, and running it again does nothing
    expect(await run(job.id, 'worker-f')).toMatchObject({ status: 'cancelled', step: row.step });
    // a finished job is returned as it is
    expect((await cancelTrainingJob(db.sql, job.id)).status).toBe('cancelled');
    const again = await createTrainingJob(db.sql, { ...request, seed: 10, saeId: 'cancelled' });
    expect(again.id).not.toBe(job.id);
    expect(again.status).toBe('queued');
    await expect(cancelTrainingJob(db.sql, '00000000-0000-4000-8000-000000000000')).rejects.toThrow(
      /unknown training job/,
    );
  });

  it('refuses bad requests with what is allowed', async () => {
    await expect(createTrainingJob(db.sql, { ...request, activationsFile: '' })).rejects.toThrow(
      /exactly one of capture_job_id or activations_file/,
    );
    await expect(createTrainingJob(db.sql, { ...request, architecture: 'gated' })).rejects.toThrow(
      /not trainable; use one of topk, batchtopk, relu, jumprelu/,
    );
    await expect(
      createTrainingJob(db.sql, { ...request, activationsFile: '../x.safetensors' }),
    ).rejects.toThrow(/inside the data directory/);
    await expect(createTrainingJob(db.sql, { ...request, k: 64 })).rejects.toThrow(
      /k 64 is larger than width 48/,
    );
    await expect(getTrainingJob(db.sql, '00000000-0000-0000-0000-000000000000')).rejects.toThrow(
      /unknown training job/,
    );
  });
});
