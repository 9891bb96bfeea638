import fs from 'node:fs/promises';
import path from 'node:path';
import {
  FIXTURES,
  Gpt2Runner,
  MANIFEST_FILE,
  neutralControlFeeds,
  readManifest,
  WINDOW_STATS_INPUT,
  windowStatOutput,
} from '@loupe/model';
import { reduceWindow } from '@loupe/records';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertedFixture, maxAbsDiff } from '../support/model.js';

const NEURONS = ['blocks.0.mlp.hook_post', 'blocks.1.mlp.hook_post'];
const HOOKS = [...NEURONS, 'blocks.1.hook_resid_pre'];
const TEXTS = [
  'Fellow citizens of the Senate and of the House of Representatives, among the vicissitudes',
  'It is a truth universally acknowledged',
  'Call me Ishmael.',
];

let modelDir: string;
let runner: Gpt2Runner;
beforeAll(async () => {
  ({ modelDir } = await convertedFixture(FIXTURES.tinyOwnBpe));
  runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
});
afterAll(() => runner?.close());

const requests = (r: Gpt2Runner, extra: { windowStats?: boolean; logits?: boolean } = {}) =>
  TEXTS.map((text) => ({
    ids: r.tokenizer.encode(text),
    hooks: HOOKS,
    logits: extra.logits ?? false,
    windowStats: extra.windowStats,
  }));

describe('per-window neuron statistics from the trunk graph', () => {
  it('equal the JavaScript reduction of the same activations, for the batch’s longest row', async () => {
    const results = await runner.forward(requests(runner, { windowStats: true }));
    const lengths = TEXTS.map((t) => runner.tokenizer.encode(t).length);
    const longest = lengths.indexOf(Math.max(...lengths));
    const width = runner.manifest.dims.dMlp;
    for (const hook of NEURONS) {
      const got = results[longest].windowStats.get(hook);
      expect(got, hook).toBeDefined();
      const want = reduceWindow(results[longest].hooks.get(hook)!, lengths[longest], width);
      expect(Array.from(got!.max)).toEqual(Array.from(want.max));
      expect(Array.from(got!.min)).toEqual(Array.from(want.min));
      expect(Array.from(got!.nonZero)).toEqual(Array.from(want.nonZero));
      // float32 sums over ≤ 20 tokens in another order: a few ulps of the summed magnitudes
      expect(maxAbsDiff(got!.sum, want.sum)).toBeLessThan(1e-4);
      // a real reduction, not zeros: this model's neurons are not all silent
      expect(want.nonZero.some((c) => c > 0)).toBe(true);
    }
    // only neuron hooks have statistics, and padded rows have none (their padding would count)
    expect([...results[longest].windowStats.keys()].sort()).toEqual(NEURONS);
    for (const [row, result] of results.entries()) {
      if (row !== longest) expect(result.windowStats.size, `row ${row}`).toBe(0);
    }
  });

  it('leave the activations as they are without them', async () => {
    const plain = await runner.forward(requests(runner));
    const withStats = await runner.forward(requests(runner, { windowStats: true }));
    for (const [row, result] of plain.entries()) {
      expect(result.windowStats.size).toBe(0);
      for (const hook of HOOKS) {
        expect(maxAbsDiff(withStats[row].hooks.get(hook)!, result.hooks.get(hook)!), hook).toBeLessThan(1e-6);
      }
    }
  });

  it('are computed only for the layers switched on (each layer’s reductions sit behind an If)', async () => {
    const manifest = await readManifest(modelDir);
    const session = await ort.InferenceSession.create(path.join(modelDir, manifest.graphs.trunk));
    try {
      const ids = runner.tokenizer.encode(TEXTS[0]);
      const feeds = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        ...neutralControlFeeds(manifest.dims),
        // layer 1 on, every other layer off (the neutral feeds switch all off)
        [WINDOW_STATS_INPUT]: new ort.Tensor(
          'bool',
          Uint8Array.from({ length: manifest.dims.nLayer }, (_, layer) => (layer === 1 ? 1 : 0)),
          [manifest.dims.nLayer],
        ),
      };
      const names = NEURONS.map((hook) => windowStatOutput(hook, 'max'));
      const out = await session.run(feeds, names);
      expect(out[names[0]].dims).toEqual([0, manifest.dims.dMlp]);
      expect(out[names[1]].dims).toEqual([1, manifest.dims.dMlp]);
    } finally {
      await session.release();
    }
  });

  it('are not computed in a batch that wants logits (the full graph has none)', async () => {
    const results = await runner.forward(requests(runner, { windowStats: true, logits: true }));
    expect(results.every((r) => r.windowStats.size === 0 && r.logits !== undefined)).toBe(true);
  });

  it('are simply absent for a model folder converted before they existed', async () => {
    // converter 1.0.0's trunk: every hook, no statistics and no switches (the full graph has the same
    // inputs and hooks, plus logits nobody fetches here)
    const oldDir = `${modelDir}-converter-1.0`;
    await fs.cp(modelDir, oldDir, { recursive: true });
    const manifestFile = path.join(oldDir, MANIFEST_FILE);
    const manifest = JSON.parse(await fs.readFile(manifestFile, 'utf8'));
    await fs.copyFile(path.join(oldDir, manifest.graphs.full), path.join(oldDir, manifest.graphs.trunk));
    manifest.converterVersion = '1.0.0';
    await fs.writeFile(manifestFile, JSON.stringify(manifest));
    const old = await Gpt2Runner.load(oldDir, { device: 'cpu', intraOpThreads: 1 });
    try {
      const results = await old.forward(requests(old, { windowStats: true }));
      const current = await runner.forward(requests(runner));
      for (const [row, result] of results.entries()) {
        expect(result.windowStats.size).toBe(0);
        expect(Array.from(result.hooks.get(NEURONS[1])!)).toEqual(
          Array.from(current[row].hooks.get(NEURONS[1])!),
        );
      }
    } finally {
      await old.close();
    }
  });
});
