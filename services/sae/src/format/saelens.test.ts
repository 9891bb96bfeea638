import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, reconstruct } from './sae-forward.js';
import { foldActivationScale, type Sae, type SaeArchitecture } from './sae-model.js';
import { CFG_FILE, readSaeLens, WEIGHTS_FILE, writeSaeLens } from './saelens.js';

let scratch: string;
beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-saelens-'));
});
afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

function randomSae(architecture: SaeArchitecture, dIn: number, dSae: number, seed: number): Sae {
  const rng = Rng.derive(seed, 'test/sae');
  return {
    config: {
      architecture,
      dIn,
      dSae,
      ...(architecture === 'topk' ? { k: 3 } : {}),
      hookName: 'blocks.3.hook_resid_post',
      modelName: 'gpt2',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 0.25,
    },
    weights: {
      W_enc: rng.normalFloat32(dIn * dSae, 0, 1),
      b_enc: rng.normalFloat32(dSae, 0, 0.1),
      W_dec: rng.normalFloat32(dSae * dIn, 0, 1),
      b_dec: rng.normalFloat32(dIn, 0, 0.1),
      ...(architecture === 'jumprelu' ? { threshold: rng.normalFloat32(dSae, 0.5, 0.1) } : {}),
    },
  };
}

/**
 * A safetensors file assembled byte by byte as the reference writer lays it out (8-byte header length,
 * JSON header, little-endian F32 data), independent of our writer.
 */
async function handWrittenSafetensors(file: string, tensors: [string, number[], number[]][]): Promise<void> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, values] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + values.length * 4] };
    offset += values.length * 4;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.alloc(offset);
  let at = 0;
  for (const [, , values] of tensors) for (const v of values) at = data.writeFloatLE(v, at);
  await fs.writeFile(file, Buffer.concat([length, json, data]));
}

// A d_in = 4, d_sae = 6 SAE small enough to encode by hand.
const W_ENC = [
  [1, 0, 0, 0, -1, 0.5],
  [0, 1, 0, 0, 0, 0.5],
  [0, 0, 1, 0, 0, 0],
  [0, 0, 0, 1, 0, 0],
];
const B_ENC = [0, -0.5, 0, -0.5, 0, 0.25];
const W_DEC = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
  [1, 1, 1, 1],
  [0, 0, 0, 2],
];
const B_DEC = [1, 0, 0, 0];
const X = Float32Array.of(3, 2, -1, 0.25);
// x − b_dec = [2, 2, −1, 0.25]; pre = that · W_enc + b_enc = [2, 1.5, −1, −0.25, −2, 2.25]
const PRE_RELU = [2, 1.5, 0, 0, 0, 2.25];

async function handWrittenFolder(name: string, cfg: object, extra: [string, number[], number[]][] = []) {
  const dir = path.join(scratch, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, CFG_FILE), JSON.stringify(cfg));
  await handWrittenSafetensors(path.join(dir, WEIGHTS_FILE), [
    ['W_dec', [6, 4], W_DEC.flat()],
    ['W_enc', [4, 6], W_ENC.flat()],
    ['b_dec', [4], B_DEC],
    ['b_enc', [6], B_ENC],
    ...extra,
  ]);
  return dir;
}

describe('SAELens import of hand-written folders', () => {
  it('reads a v6 standard ReLU SAE and encodes a vector to the hand-computed value', async () => {
    const dir = await handWrittenFolder('standard', {
      d_in: 4,
      d_sae: 6,
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      reshape_activations: 'none',
      metadata: { sae_lens_version: '6.5.0', model_name: 'gpt2-small', hook_name: 'blocks.8.hook_resid_pre' },
      architecture: 'standard',
    });
    const sae = await readSaeLens(dir);
    expect(sae.config).toMatchObject({
      architecture: 'standard',
      dIn: 4,
      dSae: 6,
      hookName: 'blocks.8.hook_resid_pre',
      modelName: 'gpt2-small',
      activationScale: 1,
    });
    expect(Array.from(encode(sae, X, 1))).toEqual(PRE_RELU);
    // x̂ = 2·row0 + 1.5·row1 + 2.25·row5 + b_dec
    expect(Array.from(reconstruct(sae, X, 1))).toEqual([3, 1.5, 0, 4.5]);
  });

  it('reads a pre-6 flat topk cfg (hook_point, activation_fn_kwargs.k)', async () => {
    const dir = await handWrittenFolder('topk-old', {
      architecture: 'topk',
      d_in: 4,
      d_sae: 6,
      model_name: 'gpt2-small',
      hook_point: 'blocks.2.hook_resid_post',
      activation_fn_str: 'topk',
      activation_fn_kwargs: { k: 2 },
      normalize_activations: false,
    });
    const sae = await readSaeLens(dir);
    expect(sae.config).toMatchObject({
      k: 2,
      hookName: 'blocks.2.hook_resid_post',
      normalizeActivations: 'none',
    });
    expect(Array.from(encode(sae, X, 1))).toEqual([2, 0, 0, 0, 0, 2.25]);
  });

  it('reads a jumprelu SAE with its threshold', async () => {
    const dir = await handWrittenFolder(
      'jumprelu',
      { architecture: 'jumprelu', d_in: 4, d_sae: 6, metadata: { sae_lens_version: '6.0.0' } },
      [['threshold', [6], [2.5, 1, 0, 0, 0, 2]]],
    );
    expect(Array.from(encode(await readSaeLens(dir), X, 1))).toEqual([0, 1.5, 0, 0, 0, 2.25]);
  });

  it('applies constant_norm_rescale on the way in and undoes it on the way out', async () => {
    const dir = await handWrittenFolder('rescale', {
      architecture: 'standard',
      d_in: 4,
      d_sae: 6,
      normalize_activations: 'constant_norm_rescale',
    });
    const sae = await readSaeLens(dir);
    // ‖x‖ = √(9 + 4 + 1 + 1/16) = 3.75, so x is scaled by 2 / 3.75
    const scaled = Float32Array.from(X, (v) => (v * 2) / 3.75);
    const plain = { ...sae, config: { ...sae.config, normalizeActivations: 'none' as const } };
    const a = encode(sae, X, 1);
    const b = encode(plain, scaled, 1);
    for (let i = 0; i < 6; i++) expect(a[i]).toBeCloseTo(b[i], 6);
    const ra = reconstruct(sae, X, 1);
    const rb = reconstruct(plain, scaled, 1);
    for (let j = 0; j < 4; j++) expect(ra[j]).toBeCloseTo((rb[j] * 3.75) / 2, 5);
  });

  it('rejects folders it cannot use, saying what is wrong', async () => {
    await expect(readSaeLens(path.join(scratch, 'nowhere'))).rejects.toThrow(/no cfg\.json/);
    const gated = await handWrittenFolder('gated', { architecture: 'gated', d_in: 4, d_sae: 6 });
    await expect(readSaeLens(gated)).rejects.toThrow(
      /architecture "gated" is not supported; supported: standard, topk, jumprelu/,
    );
    const noK = await handWrittenFolder('nok', { architecture: 'topk', d_in: 4, d_sae: 6 });
    await expect(readSaeLens(noK)).rejects.toThrow(/topk needs "k"/);
    const wrongWidth = await handWrittenFolder('wide', { architecture: 'standard', d_in: 4, d_sae: 7 });
    await expect(readSaeLens(wrongWidth)).rejects.toThrow(/"W_enc" has shape \[4, 6\], expected \[4, 7\]/);
    const noThreshold = await handWrittenFolder('nothr', { architecture: 'jumprelu', d_in: 4, d_sae: 6 });
    await expect(readSaeLens(noThreshold)).rejects.toThrow(/no tensor "threshold"/);
    const expected = await handWrittenFolder('avg', {
      architecture: 'standard',
      d_in: 4,
      d_sae: 6,
      normalize_activations: 'expected_average_only_in',
    });
    await expect(readSaeLens(expected)).rejects.toThrow(/scaling factor is not stored in the folder/);
    const badDims = await handWrittenFolder('dims', { architecture: 'standard', d_in: '4', d_sae: 6 });
    await expect(readSaeLens(badDims)).rejects.toThrow(/"d_in" must be a positive whole number/);
  });
});

describe('SAELens export', () => {
  for (const architecture of ['topk', 'standard', 'jumprelu'] as const) {
    it(`round-trips a ${architecture} SAE bit for bit`, async () => {
      const sae = randomSae(architecture, 8, 20, 1);
      const dir = path.join(scratch, `round-${architecture}`);
      await writeSaeLens(dir, sae);
      const back = await readSaeLens(dir);
      expect(back.config).toEqual(sae.config);
      for (const name of Object.keys(sae.weights) as (keyof Sae['weights'])[]) {
        expect(
          Buffer.from(
            back.weights[name]!.buffer,
            back.weights[name]!.byteOffset,
            back.weights[name]!.byteLength,
          ),
        ).toEqual(
          Buffer.from(
            sae.weights[name]!.buffer,
            sae.weights[name]!.byteOffset,
            sae.weights[name]!.byteLength,
          ),
        );
      }
      // and writing what was read gives the same files
      const again = path.join(scratch, `round-${architecture}-again`);
      await writeSaeLens(again, back);
      for (const file of [CFG_FILE, WEIGHTS_FILE])
        expect(await fs.readFile(path.join(again, file))).toEqual(await fs.readFile(path.join(dir, file)));
    });
  }

  it('writes the v6 cfg fields SAELens reads', async () => {
    const dir = path.join(scratch, 'cfg');
    await writeSaeLens(dir, randomSae('topk', 8, 20, 2));
    const cfg = JSON.parse(await fs.readFile(path.join(dir, CFG_FILE), 'utf8'));
    expect(cfg).toMatchObject({
      architecture: 'topk',
      d_in: 8,
      d_sae: 20,
      k: 3,
      dtype: 'float32',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      metadata: { model_name: 'gpt2', hook_name: 'blocks.3.hook_resid_post', hook_layer: 3 },
    });
  });

  it('folds a training scale into the weights so they take raw activations', () => {
    const sae = randomSae('topk', 8, 20, 3);
    const scale = 0.125;
    const folded = { ...sae, weights: foldActivationScale(sae.weights, scale) };
    const x = Rng.derive(4, 'x').normalFloat32(5 * 8, 0, 4);
    const scaled = Float32Array.from(x, (v) => v * scale);
    const a = encode(folded, x, 5);
    const b = encode(sae, scaled, 5);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    const ra = reconstruct(folded, x, 5);
    const rb = reconstruct(sae, scaled, 5);
    for (let i = 0; i < ra.length; i++) expect(ra[i]).toBeCloseTo(rb[i] / scale, 3);
  });
});
