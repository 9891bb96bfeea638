import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {
  CaptureJob__Output,
  DocumentCollection__Output,
  ScoringJob__Output,
  TrainingJob__Output,
} from '@loupe/common/grpc';
import { describe, expect, it } from 'vitest';
import { planDemo, scoringUnits } from './plan.js';
import {
  captureStep,
  freshWorkspace,
  readWorkspace,
  resumeWorkspace,
  scoresStep,
  shopIndexed,
  trainingSteps,
  withStep,
  writeWorkspace,
} from './state.js';

const training = (over: Partial<TrainingJob__Output>): TrainingJob__Output => ({
  id: 'job-t',
  status: 'running',
  phase: 'train',
  step: 0,
  steps: 300,
  tokens: 0,
  loss: 0,
  l0: 0,
  deadFraction: 0,
  saeId: '',
  error: '',
  checkpointStep: 0,
  ...over,
});

describe('demo workspace state', () => {
  it('maps a training job onto its two steps: train, then records in its features phase', () => {
    expect(trainingSteps(training({ step: 150 }))).toEqual({
      train: { jobId: 'job-t', status: 'running', progress: 0.5, error: null },
      records: { jobId: 'job-t', status: 'pending', progress: 0, error: null },
    });
    expect(trainingSteps(training({ phase: 'evaluate', step: 300 })).train.progress).toBe(1);
    const features = trainingSteps(training({ phase: 'features', step: 300 }));
    expect(features.train.status).toBe('done');
    expect(features.records.status).toBe('running');
    const failedInFeatures = trainingSteps(
      training({ phase: 'features', status: 'failed', error: 'disk full' }),
    );
    expect(failedInFeatures.train.status).toBe('done');
    expect(failedInFeatures.records).toMatchObject({ status: 'failed', error: 'disk full' });
    expect(trainingSteps(training({ status: 'failed', error: '' })).train).toMatchObject({
      status: 'failed',
      error: 'the job ended failed',
    });
    const done = trainingSteps(training({ status: 'done', phase: 'done', saeId: 'sae-1' }));
    expect([done.train.status, done.records.status]).toEqual(['done', 'done']);
  });

  it('maps capture and scoring jobs, counting failed units as handled', () => {
    const capture = { id: 'c', status: 'running', windowsDone: 64, totalWindows: 256, error: '' };
    expect(captureStep(capture as CaptureJob__Output)).toMatchObject({ status: 'running', progress: 0.25 });
    expect(captureStep({ ...capture, totalWindows: 0 } as CaptureJob__Output).progress).toBe(0);
    expect(captureStep({ ...capture, status: 'cancelled' } as CaptureJob__Output).status).toBe('failed');
    const scoring = { id: 's', status: 'running', unitsTotal: 32, unitsDone: 12, unitsFailed: 4, error: '' };
    expect(scoresStep(scoring as ScoringJob__Output).progress).toBe(0.5);
    expect(scoresStep({ ...scoring, status: 'budget_exhausted' } as ScoringJob__Output).status).toBe(
      'failed',
    );
  });

  it('resumes a saved workspace for the same model, retrying failed steps, and starts over for another', () => {
    let saved = freshWorkspace('loupe-tiny', true);
    saved = withStep(saved, 'model', { status: 'done', progress: 1 });
    saved = withStep(saved, 'capture', { jobId: 'c1', status: 'done', progress: 1 });
    saved = withStep(saved, 'train', { jobId: 't1', status: 'failed', error: 'boom' });
    expect(saved.status).toBe('failed');

    const resumed = resumeWorkspace(saved, 'loupe-tiny', true);
    expect(resumed.status).toBe('running');
    expect(resumed.steps.map((s) => [s.kind, s.jobId, s.status, s.error])).toEqual([
      ['model', null, 'done', null],
      ['capture', 'c1', 'done', null],
      ['train', 't1', 'pending', null],
      ['records', null, 'pending', null],
      ['scores', null, 'pending', null],
      ['shop', null, 'pending', null],
    ]);
    const other = resumeWorkspace(saved, 'gpt2', false);
    expect(other).toMatchObject({ model: 'gpt2', offline: false, status: 'running' });
    expect(other.steps.every((s) => s.status === 'pending' && s.jobId === null)).toBe(true);
    expect(resumeWorkspace(null, 'gpt2', false).model).toBe('gpt2');

    let all = resumed;
    for (const kind of ['train', 'records', 'scores', 'shop'] as const)
      all = withStep(all, kind, { status: 'done' });
    expect(all.status).toBe('done');
    expect(resumeWorkspace(all, 'loupe-tiny', true).status).toBe('done');
  });

  it('writes the file whole (renamed into place) and reads back what it wrote', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-workspace-'));
    const file = path.join(dir, 'nested', 'workspace.json');
    expect(await readWorkspace(file)).toBeNull();
    const state = withStep(freshWorkspace('loupe-tiny', true), 'capture', { jobId: 'c1', status: 'running' });
    await writeWorkspace(file, state);
    expect(await readWorkspace(file)).toEqual({ ...state, updatedAt: expect.any(String) });
    expect(await fs.readdir(path.dirname(file))).toEqual(['workspace.json']);
    await fs.writeFile(file, '{"trunc');
    expect(await readWorkspace(file)).toBeNull();
    await fs.rm(dir, { recursive: true, force: true });
  });
});

describe('demo plan', () => {
  it('reads the middle layer, trains on its residual stream and scores neurons and features', () => {
    const tiny = planDemo('loupe-tiny', { nLayer: 2, dModel: 64 });
    expect(tiny.capture.hooks).toEqual([
      'blocks.1.hook_resid_pre',
      'blocks.1.mlp.hook_post',
      'blocks.1.hook_resid_post',
    ]);
    expect(tiny.sae).toMatchObject({ hook: 'blocks.1.hook_resid_pre', architecture: 'topk', width: 512 });
    expect(scoringUnits(tiny, 'sae-1')).toBe('loupe-tiny/blocks.1.mlp.hook_post/0-15;loupe-tiny/sae-1/0-15');
    const gpt2 = planDemo('gpt2', { nLayer: 12, dModel: 768 });
    expect(gpt2.sae).toMatchObject({ hook: 'blocks.6.hook_resid_pre', width: 3072, k: 32 });
    expect(() => planDemo('broken', { nLayer: 0, dModel: 64 })).toThrow(/0 layers/);
  });

  it('indexes the shop catalog where the SAE reads, and keeps a collection that already holds it', () => {
    const plan = planDemo('loupe-tiny', { nLayer: 2, dModel: 64 });
    expect(plan.shop).toEqual({ collection: 'shop', hook: plan.sae.hook, products: 3000, seed: 1 });
    const indexed: DocumentCollection__Output = {
      name: 'shop',
      model: 'loupe-tiny',
      hook: 'blocks.1.hook_resid_pre',
      pooling: 'mean',
      dim: 64,
      count: 3000,
      createdAt: '',
      updatedAt: '',
    };
    expect(shopIndexed(indexed, plan)).toBe(true);
    expect(shopIndexed({ ...indexed, count: 6000 }, plan)).toBe(true);
    expect(shopIndexed(null, plan)).toBe(false);
    // `loupe demo shop index` before this fix embedded at the last resid_post: the SAE reads nothing there
    expect(shopIndexed({ ...indexed, hook: 'blocks.1.hook_resid_post' }, plan)).toBe(false);
    expect(shopIndexed({ ...indexed, count: 12 }, plan)).toBe(false);
    expect(shopIndexed({ ...indexed, pooling: 'last' }, plan)).toBe(false);
    expect(shopIndexed({ ...indexed, model: 'gpt2' }, plan)).toBe(false);
  });
});
