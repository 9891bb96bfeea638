import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomDictionary, SparseMixSource } from '../../testing/synthetic.js';
import { ActivationDataset } from '../data/activation-dataset.js';
import { openActivationSource } from '../data/activation-source.js';
import { evaluateHeldOut } from './evaluate-held-out.js';
import { type TrainSaeSettings, trainSae } from './train-sae.js';

let scratch: string;
let file: string;
const D = 16;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-train-sae-'));
  file = path.join(scratch, 'vectors.safetensors');
  const source = new SparseMixSource(
    randomDictionary(D, 48, 1),
    { activeProbability: 3 / 48, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    2,
  );
  // raw activations far from unit scale, so normalisation matters
  const data = source.batch(6000).map((v) => v * 40);
  await writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [6000, D], data }]);
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

const settings: TrainSaeSettings = {
  architecture: 'topk',
  width: 64,
  k: 4,
  steps: 150,
  batchSize: 256,
  lr: 5e-3,
  seed: 3,
  shuffleCapacity: 2048,
  heldOutFraction: 0.1,
  normaliseVectors: 2048,
  deadWindowTokens: 10_000,
  device: 'cpu',
  intraOpThreads: 1,
};

describe('trainSae', () => {
  it('trains on normalised data, folds the scale, and beats the mean on held-out raw vectors', async () => {
    const source = await openActivationSource(file);
    const progress: number[] = [];
    const result = await trainSae(source, { ...settings, onProgress: (p) => progress.push(p.step) });
    expect(progress).toHaveLength(150);
    expect(result.activationScale).toBeGreaterThan(0.01);
    expect(result.activationScale).toBeLessThan(0.1);
    expect(result.sae.config).toMatchObject({
      dIn: D,
      dSae: 64,
      k: 4,
      activationScale: result.activationScale,
    });
    expect(result.heldOutVectors).toBe(600);

    const raw = new ActivationDataset(source, {
      batchSize: 256,
      shuffleCapacity: 1,
      seed: 0,
      heldOutFraction: 0.1,
    });
    const metrics = await evaluateHeldOut(result.sae, raw, 600);
    expect(metrics!.vectors).toBe(600);
    expect(metrics!.fvu).toBeLessThan(0.3);
    expect(metrics!.l0).toBeLessThanOrEqual(4);
  });

  it('is deterministic for a seed', async () => {
    const source = await openActivationSource(file);
    const short = { ...settings, steps: 20 };
    const [a, b] = [await trainSae(source, short), await trainSae(source, short)];
    expect(Buffer.from(a.sae.weights.W_dec.buffer)).toEqual(Buffer.from(b.sae.weights.W_dec.buffer));
    expect(a.final).toEqual(b.final);
  });

  it('refuses k larger than the width', async () => {
    await expect(trainSae(await openActivationSource(file), { ...settings, k: 65 })).rejects.toThrow(
      /--k 65 is larger than --width 64/,
    );
  });
});
