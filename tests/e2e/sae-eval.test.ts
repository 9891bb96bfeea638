import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@loupe/common';
import { Gpt2Runner } from '@loupe/model';
import { cutWindows, readDataset } from '@loupe/records';
import {
  encode,
  ReconstructionAccumulator,
  randomSae,
  readSaeLens,
  reconstruct,
  splicedLoss,
  writeSaeLens,
} from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { convertedFixture } from '../support/model.js';
import { runCli } from '../support/process.js';

// `loupe sae eval` as users run it, checked against the plain-TypeScript float64 reference: the
// reconstruction metrics over the same held-out vectors, and the spliced loss over the same windows.
const HOOK = 'blocks.1.hook_resid_pre';
const env = { LOUPE_DEVICE: 'cpu', LOUPE_THREADS: '2' };
const ROWS = 700;

let scratch: string;
let modelDir: string;
let saeDir: string;
let vectorsFile: string;
let runner: Gpt2Runner;
let vectors: Float32Array;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-eval-'));
  ({ modelDir } = await convertedFixture(FIXTURES.tiny));
  runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 2 });
  // held-out vectors: the model's real activations at the hook over a slice of the bundled corpus
  const windows: number[][] = [];
  for await (const w of cutWindows(readDataset('default'), (t) => runner.tokenizer.encode(t), {
    length: 64,
    minLength: 64,
    maxTokens: ROWS,
  }))
    windows.push(w.ids);
  const results = await runner.forward(windows.map((ids) => ({ ids, hooks: [HOOK], logits: false })));
  vectors = new Float32Array(results.reduce((n, r) => n + r.hooks.get(HOOK)!.length, 0));
  let offset = 0;
  for (const r of results) {
    vectors.set(r.hooks.get(HOOK)!, offset);
    offset += r.hooks.get(HOOK)!.length;
  }
  vectorsFile = path.join(scratch, 'held-out.safetensors');
  const rows = vectors.length / 64;
  await writeSafetensors(
    vectorsFile,
    [{ name: 'activations', dtype: 'F32', shape: [rows, 64], data: vectors }],
    {},
  );
  const sae = randomSae('topk', 64, 256, 5, { k: 8 });
  sae.config.hookName = HOOK;
  sae.config.modelName = 'tiny';
  saeDir = path.join(scratch, 'sae');
  await writeSaeLens(saeDir, sae);
});

afterAll(async () => {
  await runner?.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('loupe sae eval', () => {
  it('prints the held-out metrics and the spliced loss the float64 reference computes', async () => {
    const run = await runCli(
      [
        'sae',
        'eval',
        saeDir,
        '--activations',
        vectorsFile,
        '--model',
        modelDir,
        '--splice-tokens',
        '256',
        '--json',
      ],
      env,
    );
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.code, run.stderr).toBe(0);
    const printed = JSON.parse(run.stdout);

    const loaded = await readSaeLens(saeDir);
    const rows = vectors.length / 64;
    const reference = new ReconstructionAccumulator(64);
    reference.add(vectors, reconstruct(loaded, vectors, rows), rows);
    const expected = reference.result();
    const latents = encode(loaded, vectors, rows);
    const l0 = latents.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0) / rows;
    // float32 ONNX encoder against the float64 reference: relative 1e-4
    expect(printed.vectors).toBe(rows);
    expect(printed.l0).toBeCloseTo(l0, 3);
    for (const key of ['mse', 'fvu', 'explainedVariance', 'explainedVarianceSaelens', 'cosine'] as const)
      expect(Math.abs(printed[key] - expected[key]), key).toBeLessThan(
        1e-4 * Math.max(1, Math.abs(expected[key])),
      );

    const windows: number[][] = [];
    for await (const w of cutWindows(readDataset('default'), (t) => runner.tokenizer.encode(t), {
      length: 64,
      minLength: 8,
      maxTokens: 256,
    }))
      windows.push(w.ids);
    const splice = await splicedLoss(runner, loaded, windows);
    expect(printed.splicedTokens).toBe(splice.tokens);
    expect(printed.ceClean).toBeCloseTo(splice.cleanCe, 4);
    expect(printed.ceZeroAblated).toBeCloseTo(splice.zeroAblatedCe, 4);
    expect(printed.ceSpliced).toBeCloseTo(splice.splicedCe, 3);
    expect(printed.ceLossRecovered).toBeCloseTo(splice.ceRecovered!, 3);
    expect(printed.klDivergence).toBeCloseTo(splice.kl, 3);
  });

  it('refuses activations of the wrong width, saying both widths', async () => {
    const wrong = path.join(scratch, 'wrong.safetensors');
    await writeSafetensors(
      wrong,
      [{ name: 'activations', dtype: 'F32', shape: [4, 32], data: new Float32Array(128) }],
      {},
    );
    const run = await runCli(['sae', 'eval', saeDir, '--activations', wrong, '--json'], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/32/);
    expect(run.stderr).toMatch(/64/);
  });
});
