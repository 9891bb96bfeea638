import { describe, expect, it } from 'vitest';
import { checkSteeringReaches } from './embed.js';

const at = (layer: number) => ({ steering: [{ layer, vector: new Float32Array(4), strength: 1 }] });
const clampAt = (layer: number) => ({
  clamps: [
    { layer, encoder: new Float32Array(4), bias: 0, threshold: 0, value: 1, decoder: new Float32Array(4) },
  ],
});

describe('checkSteeringReaches', () => {
  it('accepts steering at or before the layer the embedding is read at, and before ln_final', () => {
    expect(() => checkSteeringReaches('blocks.1.hook_resid_pre', at(1), 2)).not.toThrow();
    expect(() =>
      checkSteeringReaches(
        'blocks.1.hook_resid_post',
        { steering: [...at(0).steering, ...at(1).steering] },
        2,
      ),
    ).not.toThrow();
    expect(() => checkSteeringReaches('ln_final.hook_normalized', at(1), 2)).not.toThrow();
    expect(() => checkSteeringReaches('blocks.1.hook_resid_post', clampAt(1), 2)).not.toThrow();
  });

  it('refuses steering that cannot change the embedding, saying where to steer instead', () => {
    expect(() => checkSteeringReaches('blocks.0.hook_resid_post', at(1), 2)).toThrow(
      /steering\[0\] at blocks.1.hook_resid_pre cannot change .* read at blocks.0.hook_resid_post: steer at a layer at or before 0/,
    );
    expect(() => checkSteeringReaches('blocks.0.hook_resid_post', clampAt(1), 2)).toThrow(
      /clamps\[0\] at blocks.1.hook_resid_pre cannot change .* read at blocks.0.hook_resid_post: clamp at a layer at or before 0/,
    );
    expect(() => checkSteeringReaches('hook_embed', at(0), 2)).toThrow(/cannot change/);
  });
});
