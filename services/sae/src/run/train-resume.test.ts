import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomDictionary, SparseMixSource } from '../../testing/synthetic.js';
import { openActivationSource } from '../data/activation-source.js';
import type { SaeWeights } from '../format/sae-model.js';
import { type TrainSaeSettings, trainSae } from './train-sae.js';

let scratch: string;
let file: string;
const D = 16;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-train-resume-'));
  file = path.join(scratch, 'vectors.safetensors');
  const source = new SparseMixSource(
    randomDictionary(D, 48, 1),
    { activeProbability: 3 / 48, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    2,
  );
  await writeSafetensors(file, [
    { name: 'x', dtype: 'F32', shape: [3000, D], data: source.batch(3000).map((v) => v * 7) },
  ]);
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

const base: TrainSaeSettings = {
  architecture: 'topk',
  width: 64,
  k: 4,
  steps: 30,
  batchSize: 128,
  lr: 5e-3,
  seed: 3,
  // smaller than the data, so the stream's position inside an epoch and across epochs (3000 / 128 ≈ 23
  // batches each) both matter
  shuffleCapacity: 512,
  heldOutFraction: 0.1,
  normaliseVectors: 1024,
  // short window, so AuxK's dead mask and the dense window are live state at the checkpoints
  deadWindowTokens: 640,
  device: 'cpu',
  intraOpThreads: 1,
  checkpointEvery: 7,
};

class Crash extends Error {}

function bytes(weights: SaeWeights): Buffer {
  return Buffer.concat(
    (['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'] as const)
      .filter((name) => weights[name])
      .map((name) =>
        Buffer.from(weights[name]!.buffer, weights[name]!.byteOffset, weights[name]!.byteLength),
      ),
  );
}

/** Runs until `crashAt` steps, throwing from the progress callback as a kill would stop it. */
async function crashedRun(settings: TrainSaeSettings, crashAt: number): Promise<void> {
  const source = await openActivationSource(file);
  await expect(
    trainSae(source, {
      ...settings,
      onProgress: (p) => {
        if (p.step === crashAt) throw new Crash('simulated crash');
      },
    }),
  ).rejects.toThrow(Crash);
}

describe('training checkpoints', () => {
  it.each(['topk', 'batchtopk'] as const)(
    '(%s) a run resumed after a crash ends bit-identical to an uninterrupted one',
    async (architecture) => {
      const settings = { ...base, architecture };
      const source = await openActivationSource(file);
      const straight = await trainSae(source, {
        ...settings,
        checkpointDir: path.join(scratch, `${architecture}-a`),
      });

      const dir = path.join(scratch, `${architecture}-b`);
      await crashedRun({ ...settings, checkpointDir: dir }, 17);
      // checkpoints at 7 and 14 survive; the resumed run starts at 14
      expect((await fs.readdir(dir)).sort()).toEqual([
        'step-0000000007.safetensors',
        'step-0000000014.safetensors',
      ]);
      const steps: number[] = [];
      const resumed = await trainSae(await openActivationSource(file), {
        ...settings,
        checkpointDir: dir,
        onProgress: (p) => steps.push(p.step),
      });
      expect(resumed.resumedFrom).toBe(14);
      expect(steps[0]).toBe(15);
      expect(bytes(resumed.sae.weights).equals(bytes(straight.sae.weights))).toBe(true);
      expect(resumed.final).toEqual(straight.final);
      expect(resumed.activationScale).toBe(straight.activationScale);
      // only the last two are kept
      expect((await fs.readdir(dir)).sort()).toEqual([
        'step-0000000028.safetensors',
        'step-0000000030.safetensors',
      ]);
      // AuxK runs for topk (its dead mask is state the checkpoint must carry)
      if (architecture === 'topk') expect(straight.final.auxLoss).toBeDefined();
    },
  );

  it('falls back to the older checkpoint when the newest is damaged', async () => {
    const source = await openActivationSource(file);
    const straight = await trainSae(source, base);
    const dir = path.join(scratch, 'damaged');
    await crashedRun({ ...base, checkpointDir: dir }, 16);
    const newest = path.join(dir, 'step-0000000014.safetensors');
    const content = await fs.readFile(newest);
    content[content.length - 5] ^= 0xff;
    await fs.writeFile(newest, content);
    const resumed = await trainSae(await openActivationSource(file), { ...base, checkpointDir: dir });
    expect(resumed.resumedFrom).toBe(7);
    expect(bytes(resumed.sae.weights).equals(bytes(straight.sae.weights))).toBe(true);
  });

  it('refuses a checkpoint written with other settings', async () => {
    const dir = path.join(scratch, 'other-settings');
    await crashedRun({ ...base, checkpointDir: dir }, 8);
    await expect(
      trainSae(await openActivationSource(file), { ...base, k: 5, checkpointDir: dir }),
    ).rejects.toThrow(/checkpoint \(step 7\) from a run with different settings or data.*--force/);
  });
});
