import { describe, expect, it } from 'vitest';
import { randomDictionary, SparseMixSource } from '../synthetic.js';
import type { DenseArchitecture } from './architectures.js';
import { SaeTrainer } from './sae-trainer.js';

const shape = { d: 32, m: 128 };
const batch = 256;

/** Trains for a few steps and returns copies of the final parameters' bytes, in a fixed order. */
async function train(architecture: DenseArchitecture, seed: number, steps: number): Promise<Buffer[]> {
  const source = new SparseMixSource(
    randomDictionary(shape.d, 96, 11),
    { activeProbability: 0.05, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    12,
  );
  const trainer = await SaeTrainer.create(
    { shape, architecture, seed, device: 'cpu', intraOpThreads: 2 },
    source.batch(batch),
    batch,
  );
  for (let s = 0; s < steps; s++) await trainer.step(source.batch(batch), batch, 1e-2);
  const params = trainer.parameters();
  const arrays = [params.W_enc, params.b_enc, params.W_dec, params.b_dec, params.log_threshold];
  const bytes = arrays.flatMap((a) =>
    a ? [Buffer.from(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength))] : [],
  );
  await trainer.release();
  return bytes;
}

const architectures: DenseArchitecture[] = [
  { kind: 'relu', l1: 0.3, l1WarmupSteps: 10 },
  { kind: 'batchtopk', k: 4 },
  { kind: 'jumprelu', l0: 0.1, l0WarmupSteps: 10, bandwidth: 0.05, initialThreshold: 0.1 },
];

describe('dense SAE training on CPU', () => {
  it.each(architectures)(
    '($kind) gives bit-identical parameters for the same seed, different for another',
    async (arch) => {
      const a = await train(arch, 5, 20);
      const b = await train(arch, 5, 20);
      const c = await train(arch, 6, 20);
      for (let i = 0; i < a.length; i++) expect(Buffer.compare(a[i], b[i]), `parameter ${i}`).toBe(0);
      // the seed must reach the parameters (W_dec init), or the check above would prove nothing
      expect(Buffer.compare(a[2], c[2])).not.toBe(0);
    },
  );
});
