import { describe, expect, it } from 'vitest';
import { randomDictionary, SparseMixSource } from '../../testing/synthetic.js';
import { LatentActivity } from '../run/latent-activity.js';
import { SaeTrainer } from './sae-trainer.js';
import type { TopKShape } from './topk-graph.js';

const shape: TopKShape = { d: 32, m: 256, k: 4 };
const batch = 256;
const steps = 600;
// dead after 2 batches without firing: short, so AuxK starts early in a short test
const window = 2 * batch;
const crippled = 160;

/**
 * A deliberately bad start: the encoder columns of the first 160 latents are shrunk to 2% of their norm, so
 * their pre-activations stay positive but far below the healthy latents' and they never make the top k.
 * The main loss gives them no gradient at all; AuxK's does (they are the dead latents with the largest
 * pre-activations), which should pull them back into use.
 */
async function deadFractionAfterTraining(auxk: boolean): Promise<{ dead: number; loss: number }> {
  const source = new SparseMixSource(
    randomDictionary(shape.d, 192, 21),
    { activeProbability: 3 / 192, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    22,
  );
  const trainer = await SaeTrainer.create(
    {
      shape,
      architecture: { kind: 'topk', k: shape.k, ...(auxk ? { auxk: {} } : {}) },
      seed: 4,
      device: 'cpu',
      intraOpThreads: 2,
    },
    source.batch(batch),
    batch,
  );
  const state = trainer.snapshot();
  const wEnc = state.tensors.W_enc;
  for (let j = 0; j < shape.d; j++) for (let i = 0; i < crippled; i++) wEnc[j * shape.m + i] *= 0.02;
  trainer.restore(state);
  const activity = new LatentActivity(shape.m, window);
  let loss = 0;
  for (let s = 0; s < steps; s++) {
    const result = await trainer.step(source.batch(batch), batch, 5e-3, activity.deadMask());
    activity.record(result.latentCounts, batch);
    loss = result.mse ?? result.loss;
  }
  await trainer.release();
  return { dead: activity.deadFraction(), loss };
}

describe('AuxK', () => {
  it('revives latents that a bad initialisation left dead', async () => {
    const without = await deadFractionAfterTraining(false);
    const withAuxK = await deadFractionAfterTraining(true);
    console.log(
      `dead after ${steps} steps (window ${window} tokens): without AuxK ${(100 * without.dead).toFixed(1)}%, ` +
        `with AuxK ${(100 * withAuxK.dead).toFixed(1)}%; reconstruction loss ${without.loss.toFixed(4)} vs ${withAuxK.loss.toFixed(4)}`,
    );
    // without AuxK the crippled latents stay dead (the setup works as intended)
    expect(without.dead).toBeGreaterThan(0.5);
    // with it, most of them are back
    expect(withAuxK.dead).toBeLessThan(without.dead / 2);
  });
});
