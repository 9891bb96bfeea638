import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { allHooks, SafetensorsReader, writeSafetensors } from '@loupe/common';
import { convertCheckpoint, Gpt2Runner, readManifest } from '@loupe/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, type FixtureSpec, writeFixtureCheckpoint } from '../fixtures/index.js';
import { loadReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { flatten, maxAbsDiff } from '../support/model.js';

const small: FixtureSpec = { ...FIXTURES.tinyOwnBpe, name: 'variant', nLayer: 2, seed: 7 };
let scratch: string;
beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-convert-'));
});

async function variant(overrides: Partial<FixtureSpec>): Promise<string> {
  const dir = path.join(scratch, `ckpt-${Object.entries(overrides).flat().join('-') || 'plain'}`);
  await writeFixtureCheckpoint({ ...small, ...overrides }, dir);
  return dir;
}

async function expectMatchesReference(checkpointDir: string): Promise<void> {
  const modelDir = path.join(scratch, `model-${path.basename(checkpointDir)}`);
  await convertCheckpoint(checkpointDir, modelDir, { force: true });
  const runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
  try {
    const ids = runner.tokenizer.encode('Fellow citizens of the Senate and of the House of Representatives');
    const hooks = allHooks(runner.manifest.dims.nLayer);
    const [got] = await runner.forward([{ ids, hooks, logits: true }]);
    const want = referenceForward(await loadReferenceModel(checkpointDir), ids);
    for (const hook of hooks)
      expect(maxAbsDiff(got.hooks.get(hook)!, flatten(want.hooks.get(hook)!)), hook).toBeLessThan(1e-4);
    expect(maxAbsDiff(got.logits!, flatten(want.logits))).toBeLessThan(1e-4);
  } finally {
    await runner.close();
  }
}

describe('checkpoint variants convert to the same semantics', () => {
  it('F16 weights', async () => expectMatchesReference(await variant({ dtype: 'F16' })));
  it('BF16 weights', async () => expectMatchesReference(await variant({ dtype: 'BF16' })));
  it('transformer. prefix, explicit lm_head and the old attn.bias buffers', async () =>
    expectMatchesReference(await variant({ keyPrefix: true, includeLmHead: true, includeAttnBias: true })));

  it('writes a manifest with every hook, dims and the source hash', async () => {
    const checkpointDir = await variant({});
    const modelDir = path.join(scratch, 'manifest-model');
    await convertCheckpoint(checkpointDir, modelDir);
    const manifest = await readManifest(modelDir);
    expect(manifest.hooks.map((h) => h.name)).toEqual(allHooks(2));
    expect(manifest.hooks.find((h) => h.name === 'blocks.1.mlp.hook_post')?.shape).toEqual([
      'batch',
      'seq',
      4 * small.nEmbd,
    ]);
    expect(manifest.dims).toMatchObject({ nLayer: 2, dModel: small.nEmbd, nHead: small.nHead });
    expect(manifest.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    await expect(convertCheckpoint(checkpointDir, modelDir)).rejects.toThrow(
      /already holds a converted model/,
    );
  });
});

describe('the output folder is never something else deleted', () => {
  it('refuses a non-empty folder without a model, and the checkpoint folder itself', async () => {
    const checkpointDir = await variant({});
    const precious = await fs.mkdtemp(path.join(scratch, 'precious-'));
    await fs.writeFile(path.join(precious, 'notes.txt'), 'keep me');
    await expect(convertCheckpoint(checkpointDir, precious, { force: true })).rejects.toThrow(
      /not empty and holds no converted model/,
    );
    expect(await fs.readFile(path.join(precious, 'notes.txt'), 'utf8')).toBe('keep me');
    await expect(convertCheckpoint(checkpointDir, checkpointDir, { force: true })).rejects.toThrow(
      /is the checkpoint folder itself/,
    );
    expect((await fs.readdir(checkpointDir)).sort()).toEqual([
      'config.json',
      'merges.txt',
      'model.safetensors',
      'vocab.json',
    ]);
  });

  it('replaces an existing model with --force', async () => {
    const checkpointDir = await variant({});
    const modelDir = path.join(scratch, 'replaced-model');
    const first = await convertCheckpoint(checkpointDir, modelDir);
    const second = await convertCheckpoint(checkpointDir, modelDir, { force: true });
    expect(second.source.sha256).toBe(first.source.sha256);
    expect((await fs.readdir(scratch)).filter((f) => f.startsWith('replaced-model.'))).toEqual([]);
  });
});

describe('malformed checkpoints fail with the tensor or field named', () => {
  async function broken(mutate: (dir: string) => Promise<void>): Promise<string> {
    const dir = await fs.mkdtemp(path.join(scratch, 'broken-'));
    await writeFixtureCheckpoint(small, dir);
    await mutate(dir);
    return dir;
  }
  const rewriteTensors = (
    dir: string,
    edit: (tensors: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[]) => void,
  ) =>
    (async () => {
      const reader = await SafetensorsReader.open(path.join(dir, 'model.safetensors'));
      const tensors = [];
      for (const info of reader.tensors.values()) {
        tensors.push({
          name: info.name,
          dtype: 'F32' as const,
          shape: info.shape,
          data: await reader.readFloat32(info.name),
        });
      }
      await reader.close();
      edit(tensors);
      await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    })();
  const convertInto = (dir: string) => convertCheckpoint(dir, path.join(dir, 'out'));

  it('missing tensor', async () => {
    const dir = await broken((d) =>
      rewriteTensors(d, (t) =>
        t.splice(
          t.findIndex((x) => x.name === 'h.1.mlp.c_fc.bias'),
          1,
        ),
      ),
    );
    await expect(convertInto(dir)).rejects.toThrow('missing tensor "h.1.mlp.c_fc.bias"');
  });
  it('wrong shape', async () => {
    const dir = await broken((d) =>
      rewriteTensors(d, (t) => {
        const ln = t.find((x) => x.name === 'ln_f.weight')!;
        ln.shape = [ln.shape[0] - 1];
        ln.data = ln.data.subarray(1);
      }),
    );
    await expect(convertInto(dir)).rejects.toThrow(
      /tensor "ln_f.weight" has shape \[\d+\]; config.json implies/,
    );
  });
  it('unsupported activation_function', async () => {
    const dir = await broken(async (d) => {
      const config = JSON.parse(await fs.readFile(path.join(d, 'config.json'), 'utf8'));
      await fs.writeFile(
        path.join(d, 'config.json'),
        JSON.stringify({ ...config, activation_function: 'relu' }),
      );
    });
    await expect(convertInto(dir)).rejects.toThrow(/activation_function "relu" is not supported/);
  });
  it('not a safetensors file', async () => {
    const dir = await broken((d) =>
      fs.writeFile(path.join(d, 'model.safetensors'), 'PK\u0003\u0004 this is a zip, not safetensors'),
    );
    await expect(convertInto(dir)).rejects.toThrow(/model.safetensors is not a safetensors file/);
  });
  it('missing file', async () => {
    const dir = await broken((d) => fs.rm(path.join(d, 'merges.txt')));
    await expect(convertInto(dir)).rejects.toThrow(/missing merges.txt/);
  });
  it('leaves nothing behind when conversion fails', async () => {
    // vocab.json is read after the weights are written, so this fails half-way through
    const dir = await broken((d) => fs.writeFile(path.join(d, 'vocab.json'), '{"truncated": '));
    await expect(convertInto(dir)).rejects.toThrow(/vocab.json is not valid JSON/);
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('out'))).toEqual([]);
  });
});
