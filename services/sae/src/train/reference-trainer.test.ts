import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { type Float64Params, referenceTrain } from '../../testing/reference-trainer.js';
import type { ArchitectureSettings } from '../architectures/registry.js';
import { SaeTrainer } from './sae-trainer.js';

const d = 6;
const m = 12;
const rows = 16;
const k = 2;
const steps = 6;
const warm = 3;
// a large ε keeps Adam's first steps (≈ lr·sign(g)) from amplifying float32 rounding of near-zero gradients
const adam = { beta1: 0.9, beta2: 0.999, eps: 1e-3 };
const lrs = [2e-3, 4e-3, 6e-3, 6e-3, 6e-3, 3e-3];

/**
 * The ONNX step graphs against the float64 reference trainer (testing/reference-trainer.ts), step by
 * step over a run that crosses from the TopK warm start to the architecture's own selection: same
 * initial parameters, same batches, same learning rates; parameters must agree to 1e-4 after every step
 * budget (float32 against float64, a few Adam steps of at most 6e-3 each).
 */
describe.each<[string, ArchitectureSettings, { lambda?: number; bandwidth?: number }]>([
  ['batchtopk', { kind: 'batchtopk', k, warmStartSteps: warm }, {}],
  [
    'jumprelu',
    {
      kind: 'jumprelu',
      l0: 0.05,
      l0WarmupSteps: 0,
      bandwidth: 0.3,
      initialThreshold: 0.15,
      warmStartSteps: warm,
      warmStartK: k,
    },
    { lambda: 0.05, bandwidth: 0.3 },
  ],
])('%s training matches the float64 reference trainer', (kind, architecture, extra) => {
  it('over the warm start and after it', async () => {
    const rng = new Rng(7);
    const batches = Array.from({ length: steps }, () => rng.normalFloat32(rows * d, 0.2, 1));
    const trainer = await SaeTrainer.create(
      { shape: { d, m }, architecture, seed: 5, device: 'cpu', intraOpThreads: 1, adam },
      batches[0],
      rows,
    );
    const initial = trainer.snapshot().tensors;
    const reference: Float64Params = {};
    for (const p of trainer.runtime.params) reference[p] = Float64Array.from(initial[p]);
    for (let s = 0; s < steps; s++) await trainer.step(batches[s], rows, lrs[s]);
    referenceTrain(
      { d, m, kind: kind as 'batchtopk' | 'jumprelu', k, warmStartSteps: warm, adam, ...extra },
      reference,
      batches,
      rows,
      lrs,
    );
    const trained = trainer.parameters();
    let worst = 0;
    let moved = 0;
    for (const p of trainer.runtime.params) {
      const ours = trained[p] as Float32Array;
      for (let i = 0; i < ours.length; i++) {
        worst = Math.max(worst, Math.abs(ours[i] - reference[p][i]));
        moved = Math.max(moved, Math.abs(reference[p][i] - initial[p][i]));
      }
    }
    await trainer.release();
    console.log(
      `${kind}: worst |ONNX − float64| ${worst.toExponential(2)}; largest move ${moved.toFixed(4)}`,
    );
    // the run must have moved the parameters well beyond the tolerance
    expect(moved).toBeGreaterThan(0.01);
    expect(worst).toBeLessThan(1e-4);
  });
});
