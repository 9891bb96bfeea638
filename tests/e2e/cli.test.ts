import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHfServer } from '@loupe/common/testing';
import { Gpt2Runner } from '@loupe/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { maxAbsDiff } from '../support/model.js';
import { runCli } from '../support/process.js';

// The `loupe` command line as users and scripts run it: a real process, JSON on stdout.
let scratch: string;
let checkpointDir: string;
let modelDir: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-cli-'));
  checkpointDir = await ensureFixture(FIXTURES.tiny);
  modelDir = path.join(scratch, 'tiny');
  const converted = await runCli(['model', 'convert', checkpointDir, '--out', modelDir]);
  expect(converted.stderr).not.toMatch(/internal error/);
  expect(converted.code).toBe(0);
});

describe('loupe model convert / tokenize / activations', () => {
  it('tokenize prints ids and display tokens', async () => {
    const { code, stdout } = await runCli(['tokenize', '--model', modelDir, '--text', 'Hello world']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ ids: [15496, 995], tokens: ['Hello', ' world'] });
  });

  it('activations prints per-token rows at each hook, with logits and steering', async () => {
    const hooks = ['blocks.0.mlp.hook_post', 'blocks.1.hook_resid_post'];
    const run = (extra: string[]) =>
      runCli([
        'activations',
        '--model',
        modelDir,
        '--text',
        'Hello world',
        '--hooks',
        hooks.join(','),
        '--logits',
        '--json',
        ...extra,
      ]);
    const plain = JSON.parse((await run([])).stdout);
    expect(plain.ids).toEqual([15496, 995]);
    expect(plain.activations[hooks[0]]).toHaveLength(2);
    expect(plain.activations[hooks[0]][0]).toHaveLength(256);
    expect(plain.logits[1]).toHaveLength(50257);

    const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    const vector = Array.from({ length: 64 }, (_, i) => Math.cos(i));
    const steer = [{ hook: 'blocks.1.hook_resid_pre', vector, strength: 3 }];
    const steered = JSON.parse((await run(['--steer', JSON.stringify(steer)])).stdout);
    const [local] = await runner.forward([
      {
        ids: [15496, 995],
        hooks,
        logits: false,
        steering: [{ layer: 1, vector: Float32Array.from(vector), strength: 3 }],
      },
    ]);
    await runner.close();
    expect(maxAbsDiff(steered.activations[hooks[1]].flat(), local.hooks.get(hooks[1])!)).toBeLessThan(1e-6);
    expect(steered.activations[hooks[0]]).toEqual(plain.activations[hooks[0]]); // layer 0 is upstream
    expect(
      maxAbsDiff(steered.activations[hooks[1]].flat(), plain.activations[hooks[1]].flat()),
    ).toBeGreaterThan(0.1);
  });

  it('reports user mistakes on stderr with exit code 2', async () => {
    const badHook = await runCli([
      'activations',
      '--model',
      modelDir,
      '--text',
      'hi',
      '--hooks',
      'blocks.9.hook_resid_pre',
    ]);
    expect(badHook.code).toBe(2);
    expect(badHook.stderr).toMatch(/unknown hook "blocks.9.hook_resid_pre": the model has layers 0-1/);
    const badSteer = await runCli([
      'activations',
      '--model',
      modelDir,
      '--text',
      'hi',
      '--hooks',
      'hook_embed',
      '--steer',
      '[{',
    ]);
    expect(badSteer.code).toBe(2);
    expect(badSteer.stderr).toMatch(/--steer is not valid JSON/);
    const noModel = await runCli(['tokenize', '--model', path.join(scratch, 'nope'), '--text', 'hi']);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/no manifest.json there/);
    const noCheckpoint = await runCli(['model', 'convert', scratch, '--out', path.join(scratch, 'x')]);
    expect(noCheckpoint.code).toBe(2);
    expect(noCheckpoint.stderr).toMatch(/missing config.json/);
  });
});

describe('loupe model pull', () => {
  it('downloads through an interrupted transfer, verifies, and converts', async () => {
    const files = Object.fromEntries(
      ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt'].map((f) => [
        f,
        path.join(checkpointDir, f),
      ]),
    );
    const hub = await startHfServer({
      repos: { 'openai-community/tiny-gpt2': { files } },
      failOnce: { file: 'model.safetensors', afterBytes: 1_000_000 },
      lfsRedirect: true,
    });
    try {
      const dataDir = path.join(scratch, 'data');
      const { code, stdout, stderr } = await runCli(['model', 'pull', 'openai-community/tiny-gpt2'], {
        HF_ENDPOINT: hub.url,
        LOUPE_DATA_DIR: dataDir,
      });
      expect(stderr).not.toMatch(/internal error/);
      expect(code).toBe(0);
      const result = JSON.parse(stdout);
      expect(result.model).toBe(path.join(dataDir, 'models', 'tiny-gpt2'));
      expect(result.source.repo).toBe('openai-community/tiny-gpt2');
      expect(
        hub.requests.some((r) => r.range?.startsWith('bytes=') && r.path.includes('model.safetensors')),
      ).toBe(true);
      const tokens = await runCli(['tokenize', '--model', result.model, '--text', 'Hello world']);
      expect(JSON.parse(tokens.stdout).ids).toEqual([15496, 995]);
      const original = await fs.readFile(path.join(checkpointDir, 'model.safetensors'));
      const cached = await fs.readFile(
        path.join(dataDir, 'hub', 'openai-community--tiny-gpt2', 'main', 'model.safetensors'),
      );
      expect(cached.equals(original)).toBe(true);
    } finally {
      await hub.close();
    }
  });

  it('says clearly when the repository does not exist', async () => {
    const hub = await startHfServer({ repos: {} });
    try {
      const { code, stderr } = await runCli(['model', 'pull', 'nobody/nothing'], {
        HF_ENDPOINT: hub.url,
        LOUPE_DATA_DIR: path.join(scratch, 'data2'),
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/repository nobody\/nothing not found/);
    } finally {
      await hub.close();
    }
  });
});
