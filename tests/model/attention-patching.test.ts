import path from 'node:path';
import { allHooks, attentionHooks } from '@loupe/common';
import {
  type ForwardRequest,
  Gpt2Runner,
  type PatchSpec,
  resolveMeanPatches,
  toHookPatches,
} from '@loupe/model';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, type FixtureSpec } from '../fixtures/index.js';
import {
  loadReferenceModel,
  type ReferenceModel,
  type ReferenceOptions,
  referenceForward,
} from '../reference/gpt2-reference.js';
import { convertedFixture, flatten } from '../support/model.js';

// Attention hooks and patches in the ONNX graph (float32) against the float64 reference, which applies
// the same patches as TransformerLens forward hooks written out separately (`patchByHand`). Same 1e-4
// bound as the exactness tests; masked scores must be -Infinity on both sides.
const TOLERANCE = 1e-4;
const TEXTS = ['The quick brown fox jumps over the lazy dog.', 'Hello world, my name is', 'naïve café'];

/** Largest |a − b|, where -Infinity must meet -Infinity (a masked score) and nothing else. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === Number.NEGATIVE_INFINITY || b[i] === Number.NEGATIVE_INFINITY) {
      if (a[i] !== b[i]) return Number.POSITIVE_INFINITY;
      continue;
    }
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return max;
}

const wave = (n: number, phase: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + phase));

/**
 * The patches as the reference's forward hooks, from the spec alone: position hooks hold one array per
 * position, q/k/v/z [head · d_head] per position, scores and pattern [query · key] per head.
 */
function patchByHand(
  specs: PatchSpec[],
  nHead: number,
  means: Map<string, Float64Array>,
): NonNullable<ReferenceOptions['editHook']> {
  return (name, value) => {
    const mine = specs.filter((s) => s.hook === name);
    if (mine.length === 0) return value;
    const out = value.map((row) => Float64Array.from(row));
    const keyed = name.endsWith('hook_pattern') || name.endsWith('hook_attn_scores');
    const T = keyed ? Math.sqrt(value[0].length) : value.length;
    for (const spec of mine) {
      const positions = spec.positions ?? [...Array(T).keys()];
      positions.forEach((p, r) => {
        const given = spec.values?.[r];
        if (keyed) {
          const heads = spec.head === undefined ? [...Array(nHead).keys()] : [spec.head];
          heads.forEach((h, hi) => {
            const row = (spec.head === undefined ? (given as unknown[])?.[hi] : given) as (number | null)[];
            for (let k = 0; k < T; k++)
              out[h][p * T + k] = spec.mode === 'zero' ? 0 : (row[k] ?? Number.NEGATIVE_INFINITY);
          });
          return;
        }
        const width = out[p].length;
        const dHead = width / nHead;
        const [start, end] =
          spec.head === undefined ? [0, width] : [spec.head * dHead, (spec.head + 1) * dHead];
        const flat = spec.mode === 'replace' ? (given as unknown[]).flat(2) : undefined;
        for (let i = start; i < end; i++) {
          if (spec.mode === 'zero') out[p][i] = 0;
          else if (spec.mode === 'mean') out[p][i] = means.get(name)![i];
          else out[p][i] = flat![i - start] as number;
        }
      });
    }
    return out;
  };
}

/** Each hook's mean over positions in an unpatched reference run (mode mean's definition). */
function meansOf(model: ReferenceModel, ids: number[], specs: PatchSpec[], opts: ReferenceOptions) {
  const plain = referenceForward(model, ids, opts);
  const means = new Map<string, Float64Array>();
  for (const spec of specs.filter((s) => s.mode === 'mean')) {
    const rows = plain.hooks.get(spec.hook)!;
    const mean = new Float64Array(rows[0].length);
    for (const row of rows) for (let i = 0; i < row.length; i++) mean[i] += row[i] / rows.length;
    means.set(spec.hook, mean);
  }
  return means;
}

function specsFor(n: number, nHead: number, dModel: number, dMlp: number, variant: number): PatchSpec[] {
  const dHead = dModel / nHead;
  const last = n - 1;
  const common: PatchSpec[] = [
    { hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 1, positions: [1, last] },
    {
      hook: 'blocks.1.attn.hook_pattern',
      mode: 'replace',
      head: 0,
      positions: [last],
      values: [Array.from({ length: n }, (_, k) => (k < 2 ? 0.5 : 0))],
    },
    {
      hook: 'blocks.0.attn.hook_attn_scores',
      mode: 'replace',
      positions: [1],
      values: [Array.from({ length: nHead }, (_, h) => [h * 0.5, null, ...Array(n - 2).fill(7)])],
    },
    { hook: 'blocks.1.hook_resid_mid', mode: 'mean', positions: [0, last] },
    { hook: 'blocks.0.mlp.hook_post', mode: 'replace', positions: [1], values: [wave(dMlp, variant)] },
    { hook: 'blocks.0.attn.hook_v', mode: 'mean', head: 2 },
    {
      hook: 'blocks.1.attn.hook_q',
      mode: 'replace',
      positions: [last],
      values: [Array.from({ length: nHead }, (_, h) => wave(dHead, h + variant))],
    },
    { hook: 'blocks.1.attn.hook_k', mode: 'zero', head: nHead - 1, positions: [0] },
  ];
  return variant === 0
    ? common
    : [
        ...common.slice(0, 3),
        { hook: 'hook_embed', mode: 'zero', positions: [0] },
        { hook: 'blocks.1.hook_attn_out', mode: 'replace', positions: [last], values: [wave(dModel, 2)] },
        { hook: 'ln_final.hook_normalized', mode: 'mean', positions: [1] },
      ];
}

function checkAttentionAndPatches(spec: FixtureSpec) {
  let runner: Gpt2Runner;
  let reference: ReferenceModel;
  let hooks: string[];

  beforeAll(async () => {
    const { checkpointDir, modelDir } = await convertedFixture(spec);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    reference = await loadReferenceModel(checkpointDir);
    const { nLayer } = runner.manifest.dims;
    hooks = [...allHooks(nLayer), ...attentionHooks(nLayer)];
  });
  afterAll(() => runner?.close());

  it('gives q, k, v, attn_scores, pattern and z as the reference does, alone and in a padded batch', async () => {
    const inputs = TEXTS.map((text) => runner.tokenizer.encode(text));
    const batched = await runner.forward(inputs.map((ids) => ({ ids, hooks, logits: true })));
    const { nHead, dModel } = runner.manifest.dims;
    for (const [i, ids] of inputs.entries()) {
      const [alone] = await runner.forward([
        { ids, hooks: attentionHooks(runner.manifest.dims.nLayer), logits: false },
      ]);
      const expected = referenceForward(reference, ids);
      for (const hook of attentionHooks(runner.manifest.dims.nLayer)) {
        const want = flatten(expected.hooks.get(hook)!);
        const keyed = hook.endsWith('pattern') || hook.endsWith('attn_scores');
        expect(alone.hooks.get(hook)!.length).toBe(keyed ? nHead * ids.length ** 2 : ids.length * dModel);
        expect(maxDiff(alone.hooks.get(hook)!, want), `${spec.name} text ${i} ${hook}`).toBeLessThan(
          TOLERANCE,
        );
        expect(
          maxDiff(batched[i].hooks.get(hook)!, want),
          `${spec.name} text ${i} ${hook} (padded)`,
        ).toBeLessThan(TOLERANCE);
      }
    }
  });

  it('patches every mode at many hooks as the reference does, beside steering, in a padded batch', async () => {
    const { nHead, dModel, dMlp, nLayer } = runner.manifest.dims;
    const inputs = TEXTS.map((text) => runner.tokenizer.encode(text));
    const steer = { layer: 1, vector: Float32Array.from(wave(dModel, 5)), strength: 1.5 };
    const requests: ForwardRequest[] = [];
    const expected = [];
    for (const [i, ids] of inputs.entries()) {
      const specs = specsFor(ids.length, nHead, dModel, dMlp, i % 2);
      const steering = i === 2 ? [steer] : [];
      const opts: ReferenceOptions =
        i === 2
          ? { steering: new Map([[1, Float64Array.from(steer.vector, (v) => v * steer.strength)]]) }
          : {};
      const patches = await resolveMeanPatches(
        toHookPatches(specs, runner.manifest.dims, ids.length),
        runner.manifest.dims,
        ids.length,
        async (wanted) => (await runner.forward([{ ids, hooks: wanted, logits: false, steering }]))[0].hooks,
      );
      requests.push({ ids, hooks, logits: true, patches, steering });
      const means = meansOf(reference, ids, specs, opts);
      expected.push(
        referenceForward(reference, ids, { ...opts, editHook: patchByHand(specs, nHead, means) }),
      );
    }
    const batched = await runner.forward(requests);
    const [plain] = await runner.forward([{ ids: inputs[0], hooks, logits: true }]);
    for (const [i, request] of requests.entries()) {
      const [alone] = await runner.forward([request]);
      for (const hook of hooks) {
        const want = flatten(expected[i].hooks.get(hook)!);
        expect(maxDiff(alone.hooks.get(hook)!, want), `text ${i} ${hook}`).toBeLessThan(TOLERANCE);
        expect(maxDiff(batched[i].hooks.get(hook)!, want), `text ${i} ${hook} (padded)`).toBeLessThan(
          TOLERANCE,
        );
      }
      expect(maxDiff(batched[i].logits!, flatten(expected[i].logits))).toBeLessThan(TOLERANCE);
    }
    // the patches moved something: the last position's logits differ from the unpatched run's
    expect(maxDiff(batched[0].logits!, plain.logits!)).toBeGreaterThan(1e-3);
    // the replaced scores row reads back as given, masked keys -Infinity
    const scores = batched[1].hooks.get('blocks.0.attn.hook_attn_scores')!;
    const n = inputs[1].length;
    expect(scores[1 * n + 0]).toBeCloseTo(0, 6); // head 0, query 1, key 0
    expect(scores[n * n + 1 * n + 0]).toBeCloseTo(0.5, 6); // head 1
    expect(scores[1 * n + 1]).toBe(Number.NEGATIVE_INFINITY); // null: masked
    expect(scores[1 * n + 2]).toBe(Number.NEGATIVE_INFINITY); // after the query: masked again
    expect(nLayer).toBeGreaterThan(1);
  });
}

describe('attention hooks and patching: tiny GPT-2 with the real vocabulary', () =>
  checkAttentionAndPatches(FIXTURES.tiny));
describe('attention hooks and patching: tiny GPT-2 with its own BPE', () =>
  checkAttentionAndPatches(FIXTURES.tinyOwnBpe));

describe('bad patches are refused with the reason', () => {
  let runner: Gpt2Runner;
  beforeAll(async () => {
    const { modelDir } = await convertedFixture(FIXTURES.tiny);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
  });
  afterAll(() => runner?.close());

  it('keeps attention outputs and patch inputs out of the plain graphs, which plain requests run', async () => {
    for (const [file, research] of [
      ['model.onnx', false],
      ['trunk.onnx', false],
      ['model-research.onnx', true],
      ['trunk-research.onnx', true],
    ] as const) {
      const session = await ort.InferenceSession.create(path.join(runner.dir, file));
      expect(
        session.inputNames.some((name) => name.startsWith('patch.')),
        file,
      ).toBe(research);
      expect(
        session.outputNames.some((name) => name.includes('.attn.hook_')),
        file,
      ).toBe(research);
      await session.release();
    }
  });

  const cases: [string, unknown, RegExp][] = [
    ['not an array', { hook: 'hook_embed', mode: 'zero' }, /must be a JSON array/],
    [
      'unknown hook',
      [{ hook: 'blocks.7.hook_resid_pre', mode: 'zero' }],
      /patch\[0\]: unknown hook .*layers 0-1/,
    ],
    ['unknown mode', [{ hook: 'hook_embed', mode: 'add' }], /"mode" must be one of zero, replace, mean/],
    [
      'position out of range',
      [{ hook: 'hook_embed', mode: 'zero', positions: [3] }],
      /position 3 is out of range: .*0-2/,
    ],
    [
      'head out of range',
      [{ hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 4 }],
      /head 4 is out of range: .*heads 0-3/,
    ],
    [
      'head on a position hook',
      [{ hook: 'hook_embed', mode: 'zero', head: 0 }],
      /"head" applies only to per-head hooks/,
    ],
    [
      'values missing',
      [{ hook: 'hook_embed', mode: 'replace', positions: [0] }],
      /mode replace needs "values"/,
    ],
    [
      'wrong shape',
      [{ hook: 'blocks.0.attn.hook_q', mode: 'replace', head: 1, positions: [0], values: [[1, 2]] }],
      /values\[0\] must have shape \[16\]/,
    ],
    [
      'too few rows',
      [{ hook: 'hook_embed', mode: 'replace', positions: [0, 1], values: [wave(64, 0)] }],
      /"values" has 1 arrays for 2 positions/,
    ],
    [
      'non-number',
      [
        {
          hook: 'blocks.0.attn.hook_pattern',
          mode: 'replace',
          head: 0,
          positions: [0],
          values: [[1, null, 0]],
        },
      ],
      /values\[0\] holds null; numbers only/,
    ],
    [
      'values with zero',
      [{ hook: 'hook_embed', mode: 'zero', values: [] }],
      /"values" is only for mode replace/,
    ],
    ['mean of a pattern', [{ hook: 'blocks.0.attn.hook_pattern', mode: 'mean' }], /mode mean is not defined/],
    [
      'overlap',
      [
        { hook: 'blocks.0.attn.hook_z', mode: 'zero', positions: [1] },
        { hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 2, positions: [1] },
      ],
      /patch\[1\]: blocks.0.attn.hook_z at position 1 head 2 is already patched/,
    ],
  ];
  for (const [what, specs, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => toHookPatches(specs, runner.manifest.dims, 3)).toThrow(message);
    });
  }
});
