import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TensorToWrite, writeSafetensors } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixture, FIXTURES, type FixtureSpec } from '../fixtures/index.js';
import {
  loadReferenceModel,
  type ReferenceModel,
  type ReferenceOutput,
  referenceForward,
} from './gpt2-reference.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'loupe-reference-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const EPS = 1e-5;
const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
/** LayerNorm of one vector, written out separately from the module under test. */
function norm(x: number[], weight = 1, bias = 0): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((v) => ((v - mean) / Math.sqrt(variance + EPS)) * weight + bias);
}

function expectClose(actual: ArrayLike<number>, expected: number[], digits = 12): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], digits);
}

/**
 * A one-layer model small enough to follow by hand: d=4, two heads of 2, V=5, P=3. Token embeddings
 * are ±1 vectors, so ln_1 only scales them by s = 1/sqrt(1+eps); queries are a constant bias, keys
 * and values are the normalised input itself, so each attention weight is a two-term softmax.
 */
describe('micro model', () => {
  const d = 4;
  const wte = [
    [1, -1, 1, -1],
    [1, 1, -1, -1],
    [1, -1, -1, 1],
    [-1, 1, 1, -1],
    [2, 0, 0, -2],
  ];
  const wpe = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0.5, 0, 0, -0.5],
  ];
  const c = 2; // query bias
  const projBias = [0.1, 0.2, 0.3, 0.4].map(Math.fround); // the file stores float32
  const fcBias = Array.from({ length: 16 }, (_, k) => (k - 8) / 4);
  const s = 1 / Math.sqrt(1 + EPS);
  let model: ReferenceModel;

  beforeAll(async () => {
    const dir = join(root, 'micro');
    await mkdir(dir, { recursive: true });
    const eye = (n: number) => Array.from({ length: n * n }, (_, i) => (Math.floor(i / n) === i % n ? 1 : 0));
    const attnWeight = new Float32Array(d * 3 * d); // [4, 12]: q cols 0-3 zero, k and v identity
    for (let i = 0; i < d; i++) {
      attnWeight[i * 12 + 4 + i] = 1;
      attnWeight[i * 12 + 8 + i] = 1;
    }
    const attnBias = new Float32Array(12);
    attnBias[0] = c; // head 0 queries dimension 0 of the keys
    attnBias[3] = c; // head 1 queries dimension 3
    const mlpProj = new Float32Array(16 * d); // row k adds into column k mod 4
    for (let k = 0; k < 16; k++) mlpProj[k * d + (k % d)] = 1;
    const f32 = (values: number[]) => Float32Array.from(values);
    const tensors: [string, number[], Float32Array][] = [
      ['wte.weight', [5, d], f32(wte.flat())],
      ['wpe.weight', [3, d], f32(wpe.flat())],
      ['h.0.ln_1.weight', [d], f32([1, 1, 1, 1])],
      ['h.0.ln_1.bias', [d], new Float32Array(d)],
      ['h.0.attn.c_attn.weight', [d, 3 * d], attnWeight],
      ['h.0.attn.c_attn.bias', [3 * d], attnBias],
      ['h.0.attn.c_proj.weight', [d, d], f32(eye(d))],
      ['h.0.attn.c_proj.bias', [d], f32(projBias)],
      ['h.0.ln_2.weight', [d], f32([1, 1, 1, 1])],
      ['h.0.ln_2.bias', [d], new Float32Array(d)],
      ['h.0.mlp.c_fc.weight', [d, 16], new Float32Array(d * 16)],
      ['h.0.mlp.c_fc.bias', [16], f32(fcBias)],
      ['h.0.mlp.c_proj.weight', [16, d], mlpProj],
      ['h.0.mlp.c_proj.bias', [d], new Float32Array(d)],
      ['ln_f.weight', [d], f32([2, 2, 2, 2])],
      ['ln_f.bias', [d], f32([0.5, 0.5, 0.5, 0.5])],
    ];
    await writeSafetensors(
      join(dir, 'model.safetensors'),
      tensors.map(([name, shape, data]): TensorToWrite => ({ name, dtype: 'F32', shape, data })),
    );
    const config = { vocab_size: 5, n_positions: 3, n_embd: d, n_layer: 1, n_head: 2, n_inner: null };
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, layer_norm_epsilon: EPS }));
    model = await loadReferenceModel(dir);
  });

  it('computes attention, MLP, final norm and logits as worked out by hand', () => {
    const out = referenceForward(model, [0, 3]);
    expectClose(out.hooks.get('hook_embed')![1], [-1, 1, 1, -1]);
    expectClose(out.hooks.get('blocks.0.hook_resid_pre')![0], [1, -1, 1, -1]);

    // Position 0 sees only itself: attn_out = v_0 + bias = s·x_0 + b.
    const attn = out.hooks.get('blocks.0.hook_attn_out')!;
    expectClose(attn[0], [s + projBias[0], -s + projBias[1], s + projBias[2], -s + projBias[3]]);
    expect(attn[0][0]).toBeCloseTo(1.099995, 6);
    // Position 1, head 0: keys' dim 0 are +s and -s, so weights are a sigmoid of 2·c·s/√2;
    // head 1: both keys' dim 3 are -s, so attention is uniform over two equal value halves.
    const p0 = 1 / (1 + Math.exp((-2 * c * s) / Math.SQRT2));
    const p1 = 1 - p0;
    expectClose(attn[1], [
      s * (p0 - p1) + projBias[0],
      -s * (p0 - p1) + projBias[1],
      s + projBias[2],
      -s + projBias[3],
    ]);

    const mid = out.hooks.get('blocks.0.hook_resid_mid')!;
    expectClose(mid[1], [-1 + attn[1][0], 1 + attn[1][1], 1 + attn[1][2], -1 + attn[1][3]]);

    // c_fc's weight is zero, so hook_pre is its bias at every position.
    for (const pos of [0, 1]) expectClose(out.hooks.get('blocks.0.mlp.hook_pre')![pos], fcBias);
    const post = out.hooks.get('blocks.0.mlp.hook_post')![1];
    expect(post[12]).toBeCloseTo(0.8411919906082768, 12); // gelu_new(1)
    expect(post[4]).toBeCloseTo(-0.15880800939172324, 12); // gelu_new(-1)
    expect(post[8]).toBe(0);
    const mlpOut = [0, 1, 2, 3].map((j) =>
      [j, j + 4, j + 8, j + 12].reduce((a, k) => a + geluNew(fcBias[k]), 0),
    );
    expectClose(out.hooks.get('blocks.0.hook_mlp_out')![1], mlpOut);

    const residPost = Array.from(mid[1], (v, j) => v + mlpOut[j]);
    expectClose(out.hooks.get('blocks.0.hook_resid_post')![1], residPost);
    const normalized = norm(residPost, 2, 0.5);
    expectClose(out.hooks.get('ln_final.hook_normalized')![1], normalized);
    const logits = wte.map((row) => row.reduce((a, w, i) => a + w * normalized[i], 0));
    expectClose(out.logits[1], logits);
  });

  it('adds position embeddings, and steering at resid_pre', () => {
    const out = referenceForward(model, [4, 4, 4], {
      steering: new Map([[0, Float64Array.from([1, 0, 0, 0])]]),
    });
    expectClose(out.hooks.get('hook_pos_embed')![2], [0.5, 0, 0, -0.5]);
    expectClose(out.hooks.get('blocks.0.hook_resid_pre')![2], [3.5, 0, 0, -2.5]);
    expectClose(out.hooks.get('blocks.0.hook_resid_pre')![0], [3, 0, 0, -2]);
  });

  it('rejects bad inputs with clear errors', () => {
    expect(() => referenceForward(model, [])).toThrow(/need 1 to 3 token ids/);
    expect(() => referenceForward(model, [0, 1, 2, 3])).toThrow(/need 1 to 3 token ids, got 4/);
    expect(() => referenceForward(model, [5])).toThrow(/token id 5 is outside the vocabulary \(0-4\)/);
    expect(() => referenceForward(model, [0], { steering: new Map([[1, new Float64Array(4)]]) })).toThrow(
      /steering layer 1 does not exist/,
    );
    expect(() => referenceForward(model, [0], { steering: new Map([[0, new Float64Array(3)]]) })).toThrow(
      /has 3 values, need 4/,
    );
  });
});

function expectSameHooks(
  a: ReferenceOutput,
  b: ReferenceOutput,
  positions: number,
  skip: string[] = [],
): void {
  for (const [name, values] of a.hooks) {
    if (skip.includes(name)) continue;
    if (name.endsWith('hook_pattern') || name.endsWith('hook_attn_scores')) {
      // [head][query · key]: the first `positions` query rows, every key
      const T = Math.sqrt(values[0].length);
      for (const [h, m] of values.entries())
        expect(Array.from(b.hooks.get(name)![h].subarray(0, positions * T)), `${name}[${h}]`).toEqual(
          Array.from(m.subarray(0, positions * T)),
        );
      continue;
    }
    for (let pos = 0; pos < positions; pos++) {
      expect(Array.from(b.hooks.get(name)![pos]), `${name}[${pos}]`).toEqual(Array.from(values[pos]));
    }
  }
  for (let pos = 0; pos < positions; pos++)
    expect(Array.from(b.logits[pos])).toEqual(Array.from(a.logits[pos]));
}

describe('tiny fixture', () => {
  let model: ReferenceModel;
  const ids = [15496, 995, 11, 616, 1438, 318, 257, 1332]; // "Hello world, my name is a test"
  beforeAll(async () => {
    model = await loadReferenceModel(await ensureFixture(FIXTURES.tiny));
  });

  it('produces every hook, one d-wide (or 4d-wide) array per position', () => {
    const out = referenceForward(model, ids);
    expect([...out.hooks.keys()]).toContain('blocks.1.mlp.hook_post');
    expect(out.hooks.size).toBe(2 + 13 * 2 + 1);
    const nHead = model.config.nHead;
    for (const [name, values] of out.hooks) {
      const keyed = name.endsWith('hook_pattern') || name.endsWith('hook_attn_scores');
      expect(values).toHaveLength(keyed ? nHead : ids.length);
      expect(values[0].length).toBe(keyed ? ids.length ** 2 : name.includes('mlp.hook_') ? 256 : 64);
      for (const v of values)
        for (const [i, x] of v.entries()) {
          // masked scores (a key after its query) are -Infinity, as in TransformerLens
          const masked = name.endsWith('hook_attn_scores') && i % ids.length > Math.floor(i / ids.length);
          if (masked ? x !== Number.NEGATIVE_INFINITY : !Number.isFinite(x))
            throw new Error(`${name}[${i}] is ${x}`);
        }
    }
    const pattern = out.hooks.get('blocks.1.attn.hook_pattern')![0];
    for (let q = 0; q < ids.length; q++) {
      const row = pattern.subarray(q * ids.length, (q + 1) * ids.length);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      expect(row.subarray(q + 1).every((p) => p === 0)).toBe(true);
    }
    expect(out.logits[0].length).toBe(50257);
    // Random weights at std 0.1 must still give attention that is far from uniform and varied logits.
    const row = out.logits.at(-1)!;
    const spread = Math.max(...row) - Math.min(...row);
    expect(spread).toBeGreaterThan(1);
  });

  it('is causal: a later token never changes earlier positions', () => {
    const a = referenceForward(model, ids);
    const b = referenceForward(model, [...ids.slice(0, 5), 42, 43, 44]);
    expectSameHooks(a, b, 5);
    expect(Array.from(b.hooks.get('blocks.1.hook_resid_post')![5])).not.toEqual(
      Array.from(a.hooks.get('blocks.1.hook_resid_post')![5]),
    );
  });

  it('steering with zero changes nothing; steering a layer adds at its resid_pre only', () => {
    const plain = referenceForward(model, ids);
    const zero = referenceForward(model, ids, { steering: new Map([[1, new Float64Array(64)]]) });
    expectSameHooks(plain, zero, ids.length);

    const direction = Float64Array.from({ length: 64 }, (_, i) => (i % 2 ? 3 : -3));
    const steered = referenceForward(model, ids, { steering: new Map([[1, direction]]) });
    for (let pos = 0; pos < ids.length; pos++) {
      expect(Array.from(steered.hooks.get('blocks.0.hook_resid_post')![pos])).toEqual(
        Array.from(plain.hooks.get('blocks.0.hook_resid_post')![pos]),
      );
      expectClose(
        steered.hooks.get('blocks.1.hook_resid_pre')![pos],
        Array.from(plain.hooks.get('blocks.0.hook_resid_post')![pos], (v, i) => v + direction[i]),
      );
    }
    expect(Array.from(steered.logits[0])).not.toEqual(Array.from(plain.logits[0]));
  });
});

/** The same forward pass in numpy, written independently, for a whole-model comparison. */
const NUMPY_FORWARD = `
import json, struct, sys
import numpy as np
folder, ids = sys.argv[1], json.loads(sys.argv[2])
cfg = json.load(open(folder + '/config.json'))
f = open(folder + '/model.safetensors', 'rb')
n = struct.unpack('<Q', f.read(8))[0]
header = json.loads(f.read(n))
prefix = 'transformer.' if 'transformer.wte.weight' in header else ''
def tensor(name):
    entry = header[name if name == 'lm_head.weight' else prefix + name]
    begin, end = entry['data_offsets']
    f.seek(8 + n + begin)
    dtype = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64}[entry['dtype']]
    return np.frombuffer(f.read(end - begin), dtype=dtype).astype(np.float64).reshape(entry['shape'])
eps, D, H = cfg['layer_norm_epsilon'], cfg['n_embd'], cfg['n_head']
dh, T = D // H, len(ids)
def ln(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * tensor(p + '.weight') + tensor(p + '.bias')
def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
def heads(x):
    return x.reshape(T, H, dh).transpose(1, 0, 2)
out = {'hook_embed': tensor('wte.weight')[ids], 'hook_pos_embed': tensor('wpe.weight')[:T]}
x = out['hook_embed'] + out['hook_pos_embed']
causal = np.tril(np.ones((T, T), dtype=bool))
for L in range(cfg['n_layer']):
    h = 'h.%d' % L
    out['blocks.%d.hook_resid_pre' % L] = x
    qkv = ln(x, h + '.ln_1') @ tensor(h + '.attn.c_attn.weight') + tensor(h + '.attn.c_attn.bias')
    q, k, v = (heads(part) for part in np.split(qkv, 3, axis=-1))
    scores = np.where(causal, q @ k.transpose(0, 2, 1) / np.sqrt(dh), -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    z = (weights @ v).transpose(1, 0, 2).reshape(T, D)
    attn = z @ tensor(h + '.attn.c_proj.weight') + tensor(h + '.attn.c_proj.bias')
    mid = x + attn
    pre = ln(mid, h + '.ln_2') @ tensor(h + '.mlp.c_fc.weight') + tensor(h + '.mlp.c_fc.bias')
    post = gelu(pre)
    mlp = post @ tensor(h + '.mlp.c_proj.weight') + tensor(h + '.mlp.c_proj.bias')
    x = mid + mlp
    out.update({'blocks.%d.attn.hook_q' % L: q.transpose(1, 0, 2).reshape(T, D),
                'blocks.%d.attn.hook_k' % L: k.transpose(1, 0, 2).reshape(T, D),
                'blocks.%d.attn.hook_v' % L: v.transpose(1, 0, 2).reshape(T, D),
                'blocks.%d.attn.hook_attn_scores' % L: scores.reshape(H, T * T),
                'blocks.%d.attn.hook_pattern' % L: weights.reshape(H, T * T),
                'blocks.%d.attn.hook_z' % L: z})
    out.update({'blocks.%d.hook_attn_out' % L: attn, 'blocks.%d.hook_resid_mid' % L: mid,
                'blocks.%d.mlp.hook_pre' % L: pre, 'blocks.%d.mlp.hook_post' % L: post,
                'blocks.%d.hook_mlp_out' % L: mlp, 'blocks.%d.hook_resid_post' % L: x})
out['ln_final.hook_normalized'] = ln(x, 'ln_f')
unembed = tensor('lm_head.weight') if 'lm_head.weight' in header else tensor('wte.weight')
out['logits'] = out['ln_final.hook_normalized'] @ unembed.T
# -inf (masked scores) as null: JSON has no infinities
json.dump({name: np.where(np.isneginf(value), None, value).tolist() for name, value in out.items()}, sys.stdout)
`;

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasNumpy)('numpy cross-check', () => {
  const cases: [string, FixtureSpec | 'tiny', number[]][] = [
    ['tiny (real vocabulary, F32)', 'tiny', [15496, 995, 11, 616, 1438, 318, 257, 1332, 13, 50256]],
    [
      'own vocabulary, F16, transformer. prefix, lm_head, old attention buffers',
      {
        ...FIXTURES.tinyOwnBpe,
        name: 'numpy-variant',
        dtype: 'F16',
        keyPrefix: true,
        includeLmHead: true,
        includeAttnBias: true,
      },
      [5, 300, 17, 956, 2, 800, 640, 9, 101],
    ],
  ];
  for (const [what, spec, ids] of cases) {
    it(`matches numpy on every hook and the logits: ${what}`, async () => {
      const dir = spec === 'tiny' ? await ensureFixture(FIXTURES.tiny) : await ensureFixture(spec, root);
      const ours = referenceForward(await loadReferenceModel(dir), ids);
      const run = spawnSync('python3', ['-c', NUMPY_FORWARD, dir, JSON.stringify(ids)], {
        maxBuffer: 512 * 1024 * 1024,
        encoding: 'utf8',
      });
      expect(run.status, run.stderr).toBe(0);
      const theirs = JSON.parse(run.stdout) as Record<string, (number | null)[][]>;
      const compare = (name: string, a: Float64Array[], b: (number | null)[][]) => {
        expect(b, name).toHaveLength(a.length);
        let worst = 0;
        for (let pos = 0; pos < a.length; pos++) {
          for (let i = 0; i < a[pos].length; i++) {
            const want = b[pos][i];
            if (want === null) {
              expect(a[pos][i], `${name} masked`).toBe(Number.NEGATIVE_INFINITY);
              continue;
            }
            worst = Math.max(worst, Math.abs(a[pos][i] - want) / Math.max(1, Math.abs(want)));
          }
        }
        expect(worst, name).toBeLessThan(1e-10);
      };
      expect(Object.keys(theirs).sort()).toEqual([...ours.hooks.keys(), 'logits'].sort());
      for (const [name, values] of ours.hooks) compare(name, values, theirs[name]);
      compare('logits', ours.logits, theirs.logits);
    });
  }
});
