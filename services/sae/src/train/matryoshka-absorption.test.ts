import { describe, expect, it } from 'vitest';
import { HierarchySource, randomDictionary } from '../../testing/synthetic.js';
import type { ArchitectureSettings } from '../architectures/registry.js';
import { SaeTrainer } from './sae-trainer.js';

const d = 32;
const m = 96;
const k = 3;
const batch = 512;
const steps = 400;
const lr = 5e-3;

/**
 * Feature absorption on a case built for it: a parent direction that fires on 25% of vectors, always
 * with one of 6 children (each child implies the parent), over 48 independent background directions.
 * Both SAEs are trained alike; the latent that reads the parent best is found from the decoder, and its
 * recall is measured on fresh vectors where a child fired (threshold inference, pre > θ). In a BatchTopK
 * SAE the children's latents absorb the parent (their decoder rows lean towards it and the parent latent
 * stays silent when a child is present); Matryoshka's small prefixes must reconstruct alone, so the
 * parent keeps its latent. Nothing here is tuned per architecture.
 */
describe('Matryoshka BatchTopK against BatchTopK on a parent with children', () => {
  it('keeps the parent latent firing where a child fires', async () => {
    const background = randomDictionary(d, 48, 31);
    const make = () =>
      new HierarchySource(
        d,
        6,
        { parentProbability: 0.25, childProbability: 1 },
        background,
        { activeProbability: 2 / 48, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
        37,
      );
    const results: Record<string, { recall: number; parentCos: number; childLean: number }> = {};
    for (const architecture of [
      { kind: 'batchtopk', k, warmStartSteps: steps / 2 },
      { kind: 'matryoshka', k, warmStartSteps: steps / 2 },
    ] as ArchitectureSettings[]) {
      const source = make();
      const trainer = await SaeTrainer.create(
        { shape: { d, m }, architecture, seed: 3, device: 'cpu', intraOpThreads: 2 },
        source.batch(batch).data,
        batch,
      );
      for (let s = 0; s < steps; s++) await trainer.step(source.batch(batch).data, batch, lr);
      const p = trainer.parameters();
      const theta = trainer.inferenceThreshold?.value as number;
      const directions = source.hierarchy.directions;
      const cosine = (latent: number, row: number) => {
        let dot = 0;
        let norm = 0;
        for (let j = 0; j < d; j++) {
          dot += p.W_dec[latent * d + j] * directions[row * d + j];
          norm += p.W_dec[latent * d + j] ** 2;
        }
        return dot / Math.sqrt(norm);
      };
      let parentLatent = 0;
      for (let i = 1; i < m; i++) if (cosine(i, 0) > cosine(parentLatent, 0)) parentLatent = i;
      // how much the children's best latents lean towards the parent direction
      let lean = 0;
      for (let c = 1; c <= 6; c++) {
        let best = 0;
        for (let i = 1; i < m; i++) if (cosine(i, c) > cosine(best, c)) best = i;
        lean += cosine(best, 0) / 6;
      }
      const test = source.batch(4096);
      let withChild = 0;
      let fired = 0;
      for (let r = 0; r < 4096; r++) {
        if (test.child[r] < 0) continue;
        withChild++;
        let pre = p.b_enc[parentLatent];
        for (let j = 0; j < d; j++)
          pre += (test.data[r * d + j] - p.b_dec[j]) * p.W_enc[j * m + parentLatent];
        if (pre > theta) fired++;
      }
      await trainer.release();
      results[architecture.kind] = {
        recall: fired / withChild,
        parentCos: cosine(parentLatent, 0),
        childLean: lean,
      };
    }
    console.log(
      Object.entries(results)
        .map(
          ([kind, r]) =>
            `${kind}: parent latent cos ${r.parentCos.toFixed(3)}, fires on ${(100 * r.recall).toFixed(1)}% of ` +
            `vectors with a child; children's latents lean ${r.childLean.toFixed(3)} towards the parent`,
        )
        .join('\n'),
    );
    // measured: BatchTopK's parent latent (cos 0.69) fires on 25% of them and the children's latents
    // lean 0.47 towards the parent; Matryoshka's (cos 0.86) on 75%, leaning 0.14
    expect(results.matryoshka.parentCos).toBeGreaterThan(0.8);
    expect(results.matryoshka.recall).toBeGreaterThan(results.batchtopk.recall + 0.3);
    expect(results.matryoshka.childLean).toBeLessThan(results.batchtopk.childLean / 2);
  });
});
