import { Rng } from '@loupe/common';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { paramFeeds, randomSaeParams } from '../../testing/gradient-check.js';
import { SAE_PARAMS, type SaeShape, saeIo, saeParamShape } from './dense-sae-ops.js';
import { COMPLETE_OUTPUT, K_CAP_INPUT, L1_INPUT, MAX_ACTIVE_OUTPUT, reluL1Pass } from './relu-l1-graph.js';
import { buildStepGraph } from './sae-graphs.js';
import { SaeTrainer } from './sae-trainer.js';
import type { TrainerState } from './trainer-state.js';

const shape: SaeShape = { d: 16, m: 128 };
const rows = 64;

/**
 * Parameters and a batch where ReLU-L1 is as sparse as a trained SAE (about 8 of 128 latents per
 * vector, the busiest vector with noticeably more), with nonzero Adam moments as mid-training.
 */
function sparseState(): Record<string, ort.Tensor> {
  const params = randomSaeParams(shape, SAE_PARAMS, 11);
  // a per-latent threshold, so latents fire at different rates as in a trained dictionary
  const rng = new Rng(12);
  for (let i = 0; i < shape.m; i++) params.b_enc[i] = -2.2 - rng.nextUniform() * 1.5;
  const x = new Rng(13).normalFloat32(rows * shape.d, 0, 1);
  const feeds = paramFeeds(shape, SAE_PARAMS, params, x, rows);
  const moments = new Rng(14);
  for (const p of SAE_PARAMS) {
    const dims = saeParamShape(shape, p);
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[saeIo.moment('m', p)] = new ort.Tensor('float32', moments.normalFloat32(n, 0, 0.1), dims);
    const v = Float32Array.from(moments.normalFloat32(n, 0, 0.1), (value) => value * value);
    feeds[saeIo.moment('v', p)] = new ort.Tensor('float32', v, dims);
  }
  feeds.lr = new ort.Tensor('float32', Float32Array.of(0.01), []);
  feeds.t = new ort.Tensor('float32', Float32Array.of(5), []);
  feeds[L1_INPUT] = new ort.Tensor('float32', Float32Array.of(0.7), []);
  return feeds;
}

async function runStep(kernel: 'dense' | 'sparse', feeds: Record<string, ort.Tensor>, kCap = 0) {
  const graph = buildStepGraph(shape, (g, s) => reluL1Pass(g, s, kernel), `relu_${kernel}`);
  const session = await ort.InferenceSession.create(graph, { intraOpNumThreads: 1 });
  const extra =
    kernel === 'sparse'
      ? { [K_CAP_INPUT]: new ort.Tensor('int64', BigInt64Array.of(BigInt(kCap)), [1]) }
      : {};
  const out = await session.run({ ...feeds, ...extra });
  await session.release();
  return out;
}

const scalar = (t: ort.Tensor) => (t.data as Float32Array)[0];

describe('ReLU-L1 sparse kernel', () => {
  it('takes the same step as the dense kernel on a sparse state (loss, L0, counts, every updated tensor)', async () => {
    const feeds = sparseState();
    const dense = await runStep('dense', feeds);
    const maxActive = scalar(dense[MAX_ACTIVE_OUTPUT]);
    const l0 = scalar(dense.l0);
    // the state is what it claims: sparse, and uneven across vectors
    expect(l0).toBeGreaterThan(4);
    expect(l0).toBeLessThan(16);
    expect(maxActive).toBeGreaterThan(l0 + 3);
    const sparse = await runStep('sparse', feeds, maxActive + 1);
    expect(scalar(sparse[COMPLETE_OUTPUT])).toBe(1);
    expect(scalar(sparse[MAX_ACTIVE_OUTPUT])).toBe(maxActive);
    expect(scalar(sparse.l0)).toBe(l0);
    expect(Array.from(sparse.latent_counts.data as Float32Array)).toEqual(
      Array.from(dense.latent_counts.data as Float32Array),
    );
    for (const name of ['loss', 'mse', 'sparsity_loss']) {
      expect(Math.abs(scalar(sparse[name]) - scalar(dense[name])), name).toBeLessThan(
        1e-5 * Math.abs(scalar(dense[name])),
      );
    }
    let moved = 0;
    for (const p of SAE_PARAMS) {
      for (const name of [saeIo.updated(p), saeIo.updatedMoment('m', p), saeIo.updatedMoment('v', p)]) {
        const want = dense[name].data as Float32Array;
        const got = sparse[name].data as Float32Array;
        const before = feeds[name.replace(/^new_/, '')].data as Float32Array;
        for (let i = 0; i < want.length; i++) {
          expect(Math.abs(got[i] - want[i]), `${name}[${i}]`).toBeLessThan(
            1e-5 * Math.max(1e-2, Math.abs(want[i])),
          );
          if (name === saeIo.updated(p) && Math.abs(want[i] - before[i]) > 1e-3) moved++;
        }
      }
    }
    // not vacuous: the step changed many parameters, the penalty and the reconstruction both mattered
    expect(moved).toBeGreaterThan(1000);
    expect(scalar(dense.sparsity_loss)).toBeGreaterThan(0);
  });

  it('reports incomplete when k_cap cuts off a firing latent', async () => {
    const feeds = sparseState();
    const maxActive = scalar((await runStep('dense', feeds))[MAX_ACTIVE_OUTPUT]);
    expect(scalar((await runStep('sparse', feeds, maxActive))[COMPLETE_OUTPUT])).toBe(0);
    expect(scalar((await runStep('sparse', feeds, maxActive - 1))[COMPLETE_OUTPUT])).toBe(0);
  });
});

/** A trainer whose state is sparseState's parameters (moments zero, as at a fresh start). */
async function sparseTrainer(
  kernel: 'auto' | 'dense',
): Promise<{ trainer: SaeTrainer; batches: Float32Array[] }> {
  const batches = Array.from({ length: 6 }, (_, i) => new Rng(100 + i).normalFloat32(rows * shape.d, 0, 1));
  const trainer = await SaeTrainer.create(
    {
      shape,
      architecture: { kind: 'relu', l1: 0.7, l1WarmupSteps: 0, kernel },
      seed: 3,
      device: 'cpu',
      intraOpThreads: 1,
    },
    batches[0],
    rows,
  );
  const saved = trainer.snapshot();
  const feeds = sparseState();
  for (const p of SAE_PARAMS) saved.tensors[p] = (feeds[p].data as Float32Array).slice();
  trainer.restore(saved);
  return { trainer, batches };
}

describe('ReLU-L1 trainer kernel choice', () => {
  it('switches to the sparse kernel once sparse and follows the dense trainer step for step', async () => {
    const auto = await sparseTrainer('auto');
    const dense = await sparseTrainer('dense');
    try {
      const kernels: string[] = [];
      for (const batch of auto.batches) {
        kernels.push(auto.trainer.nextKernel.kind);
        const a = await auto.trainer.step(batch, rows, 0.01);
        const b = await dense.trainer.step(batch, rows, 0.01);
        expect(a.l0).toBe(b.l0);
        expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * b.loss);
      }
      expect(kernels[0]).toBe('dense');
      expect(kernels.slice(1).every((k) => k === 'sparse')).toBe(true);
      const got = auto.trainer.parameters();
      const want = dense.trainer.parameters();
      for (const p of SAE_PARAMS) {
        for (let i = 0; i < want[p].length; i++) {
          expect(Math.abs(got[p][i] - want[p][i]), `${p}[${i}]`).toBeLessThan(
            1e-4 * Math.max(1, Math.abs(want[p][i])),
          );
        }
      }
    } finally {
      await auto.trainer.release();
      await dense.trainer.release();
    }
  });

  it('resumes from a snapshot bit-identically, kernel choice included', async () => {
    const straight = await sparseTrainer('auto');
    const resumed = await sparseTrainer('auto');
    try {
      let saved: TrainerState | undefined;
      for (const [i, batch] of straight.batches.entries()) {
        await straight.trainer.step(batch, rows, 0.01);
        if (i === 2) saved = straight.trainer.snapshot();
      }
      if (!saved) throw new Error('no snapshot taken');
      expect(saved.scalars.sparse_k_cap).toBeGreaterThan(0);
      resumed.trainer.restore(saved);
      expect(resumed.trainer.nextKernel.kind).toBe('sparse');
      for (const batch of straight.batches.slice(3)) await resumed.trainer.step(batch, rows, 0.01);
      const a = straight.trainer.snapshot();
      const b = resumed.trainer.snapshot();
      expect(b.steps).toBe(a.steps);
      for (const name of Object.keys(a.tensors)) expect(b.tensors[name], name).toEqual(a.tensors[name]);
    } finally {
      await straight.trainer.release();
      await resumed.trainer.release();
    }
  });
});
