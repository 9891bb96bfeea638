import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { ReconstructionAccumulator, readSaeLens, reconstruct } from '@loupe/sae';
import { randomDictionary, SparseMixSource } from '@loupe/sae/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/process.js';

// `loupe sae train` as users run it: a real process on a safetensors file of synthetic vectors, whose
// output folder must load (SAELens layout) and reconstruct fresh vectors far better than zero does.
const D = 32;
const dictionary = randomDictionary(D, 128, 11);
const mix = { activeProbability: 4 / 128, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 };
const env = { LOUPE_DEVICE: 'cpu', LOUPE_THREADS: '2' };

let scratch: string;
let vectors: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-cli-'));
  vectors = path.join(scratch, 'vectors.safetensors');
  const rows = 16_384;
  const data = new SparseMixSource(dictionary, mix, 12).batch(rows);
  await writeSafetensors(vectors, [{ name: 'activations', dtype: 'F32', shape: [rows, D], data }], {
    hook: 'blocks.1.hook_resid_post',
    model: 'synthetic',
  });
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('loupe sae train', () => {
  it('writes an SAELens folder that reconstructs better than the zero baseline', async () => {
    const out = path.join(scratch, 'sae');
    const run = await runCli(
      [
        'sae',
        'train',
        '--activations',
        vectors,
        '--arch',
        'topk',
        '--width',
        '192',
        '--k',
        '6',
        '--steps',
        '300',
        '--batch',
        '512',
        '--lr',
        '5e-3',
        '--seed',
        '1',
        '--holdout',
        '5',
        '--normalize',
        '--out',
        out,
      ],
      env,
    );
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/training .*L0 .*dead/);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ architecture: 'topk', dIn: D, dSae: 192, k: 6, steps: 300 });
    expect(summary.heldOut.fvu).toBeLessThan(0.5);

    const sae = await readSaeLens(out);
    expect(sae.config).toMatchObject({
      architecture: 'topk',
      dIn: D,
      dSae: 192,
      k: 6,
      hookName: 'blocks.1.hook_resid_post',
      modelName: 'synthetic',
    });

    // fresh vectors from the same distribution, never seen in training
    const rows = 1000;
    const x = new SparseMixSource(dictionary, mix, 99).batch(rows);
    const withSae = new ReconstructionAccumulator(D);
    withSae.add(x, reconstruct(sae, x, rows), rows);
    const withZero = new ReconstructionAccumulator(D);
    withZero.add(x, new Float32Array(x.length), rows);
    const [sae_, zero] = [withSae.result(), withZero.result()];
    expect(sae_.mse).toBeLessThan(0.5 * zero.mse);
    expect(sae_.fvu).toBeLessThan(0.5);
    expect(sae_.cosine).toBeGreaterThan(0.8);
  });

  it.each([
    ['relu', 'standard', []],
    ['batchtopk', 'jumprelu', ['--k', '6']],
    ['jumprelu', 'jumprelu', []],
  ])(
    'trains %s into a SAELens %s folder that reconstructs better than the zero baseline',
    async (arch, savedAs, extra) => {
      const out = path.join(scratch, `sae-${arch}`);
      const run = await runCli(
        [
          'sae',
          'train',
          '--activations',
          vectors,
          '--arch',
          arch,
          '--width',
          '192',
          ...extra,
          '--steps',
          '300',
          '--batch',
          '512',
          '--lr',
          '5e-3',
          '--seed',
          '1',
          '--out',
          out,
        ],
        env,
      );
      expect(run.stderr).not.toMatch(/internal error/);
      expect(run.code, run.stderr).toBe(0);
      const sae = await readSaeLens(out);
      expect(sae.config).toMatchObject({ architecture: savedAs, dIn: D, dSae: 192 });
      if (savedAs === 'jumprelu') expect(sae.weights.threshold?.every((t) => t > 0)).toBe(true);
      const rows = 1000;
      const x = new SparseMixSource(dictionary, mix, 98).batch(rows);
      const withSae = new ReconstructionAccumulator(D);
      withSae.add(x, reconstruct(sae, x, rows), rows);
      const withZero = new ReconstructionAccumulator(D);
      withZero.add(x, new Float32Array(x.length), rows);
      // centred: a broken encoder that leaves only b_dec scores about 1, whatever the data's mean
      expect(withSae.result().fvu).toBeLessThan(0.7);
      expect(withSae.result().mse).toBeLessThan(withZero.result().mse);
    },
  );

  it('refuses an architecture it cannot train, listing those it can', async () => {
    const args = (arch: string) => [
      'sae',
      'train',
      '--activations',
      vectors,
      '--arch',
      arch,
      '--width',
      '8',
      '--steps',
      '1',
      '--out',
      path.join(scratch, 'x'),
    ];
    const standard = await runCli(args('standard'), env);
    expect(standard.code).toBe(2);
    expect(standard.stderr).toMatch(
      /--arch standard can be imported but not trained; train one of: topk, batchtopk, relu, jumprelu/,
    );
    const gated = await runCli(args('gated'), env);
    expect(gated.code).toBe(2);
    expect(gated.stderr).toMatch(/--arch gated is unknown/);
  });

  it('names a missing tensor and lists the file’s tensors', async () => {
    const run = await runCli(
      [
        'sae',
        'train',
        '--activations',
        vectors,
        '--tensor',
        'resid',
        '--width',
        '8',
        '--steps',
        '1',
        '--out',
        path.join(scratch, 'y'),
      ],
      env,
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no tensor named "resid" \(tensors: activations F32\[16384, 32\]\)/);
  });
});
