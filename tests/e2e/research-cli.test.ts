import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { activationPatching, Gpt2Runner, toHookPatches } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { maxAbsDiff } from '../support/model.js';
import { runCli } from '../support/process.js';

// `loupe activations --patch`, `loupe lens`, `loupe dla`, `loupe patch` as scripts run them: a real
// process, JSON on stdout, the same numbers as the library (itself checked against the float64
// reference in tests/model), clear refusals.
let scratch: string;
let modelDir: string;
let runner: Gpt2Runner;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-research-cli-'));
  modelDir = path.join(scratch, 'tiny');
  const converted = await runCli(['model', 'convert', await ensureFixture(FIXTURES.tiny), '--out', modelDir]);
  expect(converted.code).toBe(0);
  runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
});
afterAll(async () => {
  await runner?.close();
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

describe('research commands', () => {
  it('activations prints attention hooks in TransformerLens shapes and applies --patch', async () => {
    const patch = [{ hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 1 }];
    const hooks = ['blocks.0.attn.hook_attn_scores', 'blocks.0.attn.hook_q', 'blocks.1.hook_resid_post'];
    const run = await runCli([
      'activations',
      '--model',
      modelDir,
      '--text',
      'Hello world, hi',
      '--hooks',
      hooks.join(','),
      '--patch',
      JSON.stringify(patch),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    const n = out.ids.length;
    const scores = out.activations[hooks[0]];
    expect([scores.length, scores[0].length, scores[0][0].length]).toEqual([4, n, n]);
    expect(scores[0][0][1]).toBeNull(); // masked: -Infinity in the runtime, null in JSON
    expect([out.activations[hooks[1]].length, out.activations[hooks[1]][0].length]).toEqual([n, 4]);
    const [local] = await runner.forward([
      {
        ids: out.ids,
        hooks: [hooks[2]],
        logits: false,
        patches: toHookPatches(patch, runner.manifest.dims, n),
      },
    ]);
    expect(maxAbsDiff(Float32Array.from(out.activations[hooks[2]].flat()), local.hooks.get(hooks[2])!)).toBe(
      0,
    );
  });

  it('patch, lens and dla print their results; bad input is refused with the reason', async () => {
    const args = ['--clean', 'Mary met John, John thanked', '--corrupted', 'Mary met John, Mary thanked'];
    const run = await runCli([
      'patch',
      '--model',
      modelDir,
      ...args,
      '--answer',
      ' Mary',
      '--wrong',
      ' John',
      '--json',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const sweep = JSON.parse(run.stdout);
    const ids = runner.tokenizer.encode('Mary met John, John thanked');
    const direct = await activationPatching(runner, {
      clean: ids,
      corrupted: runner.tokenizer.encode('Mary met John, Mary thanked'),
      answer: runner.tokenizer.encode(' Mary')[0],
      wrong: runner.tokenizer.encode(' John')[0],
      hook: 'resid_pre',
    });
    // another process, other thread counts: float32 sums may round differently, well within 1e-4
    expect(maxAbsDiff(sweep.diffs.flat(), direct.diffs.flat())).toBeLessThan(1e-4);

    const lens = JSON.parse(
      (await runCli(['lens', '--model', modelDir, '--text', 'Hello world', '--token', ' world', '--json']))
        .stdout,
    );
    expect(lens.top).toHaveLength(2);
    expect(lens.chosen.rank[1]).toHaveLength(2);
    const dla = JSON.parse(
      (await runCli(['dla', '--model', modelDir, '--text', 'Hello world', '--token', ' the', '--json']))
        .stdout,
    );
    expect(dla.heads).toHaveLength(2);
    expect(dla.heads[0]).toHaveLength(4);

    const unequal = await runCli([
      'patch',
      '--model',
      modelDir,
      '--clean',
      'a b c',
      '--corrupted',
      'a b',
      '--answer',
      ' a',
      '--wrong',
      ' b',
    ]);
    expect(unequal.code).not.toBe(0);
    expect(unequal.stderr).toMatch(/same token length: 3 vs 2 tokens/);
    const multi = await runCli(['dla', '--model', modelDir, '--text', 'hi', '--token', 'Paris is']);
    expect(multi.stderr).toMatch(/--token "Paris is" is 2 tokens/);
    const badPatch = await runCli([
      'activations',
      '--model',
      modelDir,
      '--text',
      'hi',
      '--hooks',
      'hook_embed',
      '--patch',
      '[{"hook":"hook_embed","mode":"replace"}]',
    ]);
    expect(badPatch.stderr).toMatch(/patch\[0\]: mode replace needs "values"/);
  });
});
