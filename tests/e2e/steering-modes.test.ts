import path from 'node:path';
import { Gpt2Runner } from '@loupe/model';
import { importSae, type Sae, type SaeArchitecture, writeSaeLens } from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { loadReferenceModel, type ReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { silentFeatureSae } from '../support/relu-sae.js';
import { type Stack, startStack } from '../support/stack.js';

// steer with CLAMP and ABLATE over GraphQL, through the real gateway, SAE and capture processes: the
// clamped greedy continuation is recomputed with the float64 reference and the SAE's weights.
const D = 64;
const D_SAE = 32;
const HOOK = 'blocks.1.hook_resid_pre';
const SILENT = 5; // a feature whose encoder bias keeps it at 0 on every input
const PROMPT = 'The quick brown fox';
const MAX_TOKENS = 6;

function randomSae(seed: number, architecture: SaeArchitecture): Sae {
  const k = architecture === 'topk' ? 4 : undefined;
  return silentFeatureSae(seed, { architecture, hook: HOOK, dSae: D_SAE, silent: SILENT, k });
}

const STEER = `query ($edits: [SteeringEdit!]!) {
  steer(prompt: "${PROMPT}", edits: $edits, options: { maxTokens: ${MAX_TOKENS}, temperature: 0, seed: 3 }) {
    steered { tokens { id } logprobs } unsteered { tokens { id } logprobs }
  }
}`;

describe('steering modes over GraphQL', () => {
  let stack: Stack;
  const relu = randomSae(21, 'standard');
  let reference: ReferenceModel;
  let promptIds: number[];

  beforeAll(async () => {
    stack = await startStack(async ({ sql, dataDir, scratch }) => {
      for (const [id, sae] of [
        ['tiny-relu', relu],
        ['tiny-topk', randomSae(22, 'topk')],
      ] as const) {
        await writeSaeLens(path.join(scratch, 'saelens', id), sae);
        await importSae(sql, dataDir, path.join(scratch, 'saelens', id), { id });
      }
    });
    reference = await loadReferenceModel(await ensureFixture(FIXTURES.tiny));
    const runner = await Gpt2Runner.load(stack.servedModel, { device: 'cpu', intraOpThreads: 1 });
    promptIds = runner.tokenizer.encode(PROMPT);
    await runner.close();
  }, 240_000);
  afterAll(() => stack?.stop());

  /** Greedy continuation under the float64 reference with feature f held at c inside the SAE. */
  function referenceClamped(f: number, c: number): number[] {
    const { W_enc, b_enc, W_dec, b_dec } = relu.weights;
    const clamp = (layer: number, rows: Float64Array[]) =>
      layer !== 1
        ? rows
        : rows.map((x) => {
            let pre = b_enc[f];
            for (let j = 0; j < D; j++) pre += (x[j] - b_dec[j]) * W_enc[j * D_SAE + f];
            const act = Math.max(0, pre);
            return x.map((v, j) => v + (c - act) * W_dec[f * D + j]);
          });
    const ids = [...promptIds];
    const out: number[] = [];
    for (let step = 0; step < MAX_TOKENS; step++) {
      const last = referenceForward(reference, ids, { editResidPre: clamp }).logits.at(-1)!;
      const next = last.indexOf(Math.max(...last));
      out.push(next);
      ids.push(next);
    }
    return out;
  }

  it('CLAMP holds a feature inside the SAE: the continuation is the reference computation', async () => {
    const { steer } = await stack.gql(STEER, {
      edits: [{ unit: 'tiny/tiny-relu/3', mode: 'CLAMP', strength: 8 }],
    });
    const ids = steer.steered.tokens.map((t: { id: number }) => t.id);
    expect(ids).toEqual(referenceClamped(3, 8));
    expect(ids).not.toEqual(steer.unsteered.tokens.map((t: { id: number }) => t.id));
  });

  it('ABLATE of a feature that never fires changes nothing; ABLATE of a live one follows the reference', async () => {
    const { steer } = await stack.gql(STEER, {
      edits: [{ unit: `tiny/tiny-relu/${SILENT}`, mode: 'ABLATE' }],
    });
    expect(steer.steered).toEqual(steer.unsteered);
    const live = await stack.gql(STEER, { edits: [{ unit: 'tiny/tiny-relu/0', mode: 'ABLATE' }] });
    expect(live.steer.steered.tokens.map((t: { id: number }) => t.id)).toEqual(referenceClamped(0, 0));
  });

  it('refuses CLAMP of a TopK feature and of a raw vector with a message saying what is supported', async () => {
    const topk = await stack.post(STEER, {
      edits: [{ unit: 'tiny/tiny-topk/1', mode: 'CLAMP', strength: 2 }],
    });
    expect(topk.errors[0]).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: expect.stringMatching(/TopK.*CLAMP is not supported for it \(ADD is\)/),
    });
    const raw = await stack.post(STEER, {
      edits: [{ hook: HOOK, vector: Array(D).fill(0), mode: 'ABLATE' }],
    });
    expect(raw.errors[0].message).toMatch(/a raw vector can only be ADDed/);
  });
});
