import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  activationPatching,
  directLogitAttribution,
  Gpt2Runner,
  logitLens,
  toHookPatches,
} from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient, floats } from '../support/grpc.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// Attention hooks, patches and the experiments through gRPC (the capture service) and GraphQL (the
// gateway), both real processes, against the library run here on the same model folder (itself checked
// against the float64 reference in tests/model). Other processes round float32 sums their own way:
// 1e-5 apart at most here.
const CLOSE = 1e-5;

let db: TestDatabase;
let capture: RunningProcess;
let gateway: RunningProcess;
let client: CaptureApi;
let runner: Gpt2Runner;
let url: string;
let scratch: string;

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = any;

async function gql(
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ data?: Json; errors?: Json[]; raw: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await response.text();
  return { raw, ...JSON.parse(raw) };
}

async function ok(query: string, variables?: Record<string, unknown>): Promise<Json> {
  const response = await gql(query, variables);
  expect(response.errors, response.raw).toBeUndefined();
  return response.data;
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-gateway-research-'));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  const served = path.join(dataDir, 'models', 'tiny');
  await fs.mkdir(path.dirname(served), { recursive: true });
  await fs.rename(modelDir, served);
  runner = await Gpt2Runner.load(served, { device: 'cpu', intraOpThreads: 1 });
  db = await startTestDatabase();
  const captureAddress = `127.0.0.1:${await freePort()}`;
  const gatewayPort = await freePort();
  const env = {
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: captureAddress,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(db),
  };
  capture = startProcess('services/capture/dist/main.js', env);
  gateway = startProcess('services/gateway/dist/bin.js', env);
  client = await captureClient(captureAddress);
  url = `http://127.0.0.1:${gatewayPort}/graphql`;
  for (let i = 0; ; i++) {
    const up = await gql('{ __typename }').then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 240 || gateway.child.exitCode !== null)
      throw new Error(`gateway did not start:\n${gateway.stderr()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  client?.close();
  await runner?.close();
  await gateway?.stop();
  await capture?.stop();
  await db?.stop();
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

describe('attention hooks and patches over gRPC and GraphQL', () => {
  const text = 'The capital of France is Paris';
  const scores = 'blocks.0.attn.hook_attn_scores';
  const patchesJson = [
    { hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 2, positions: [1, 3] },
    {
      hook: 'blocks.1.attn.hook_pattern',
      mode: 'replace',
      head: 0,
      positions: [2],
      values: [[0.25, 0.75, 0, 0, 0, 0]],
    },
    { hook: 'blocks.0.hook_resid_mid', mode: 'mean', positions: [0] },
  ];

  it('gRPC Activations: TransformerLens shapes, -infinity where masked, patches as the library applies them', async () => {
    const ids = runner.tokenizer.encode(text);
    const n = ids.length;
    const hooks = [scores, 'blocks.0.attn.hook_v', 'blocks.1.hook_resid_post'];
    const response = await client.Activations({
      text,
      hooks,
      patches: patchesJson.map((p) => ({
        hook: p.hook,
        mode: p.mode,
        positions: p.positions,
        ...(p.head === undefined ? {} : { head: p.head }),
        values: (p.values ?? []).flat(),
      })),
    });
    expect(response.activations[scores].shape.map(Number)).toEqual([4, n, n]);
    expect(response.activations['blocks.0.attn.hook_v'].shape.map(Number)).toEqual([n, 4, 16]);
    const got = floats(response.activations[scores]);
    expect(got[1]).toBe(Number.NEGATIVE_INFINITY); // head 0, query 0, key 1
    const dims = runner.manifest.dims;
    const checked = toHookPatches(patchesJson, dims, n);
    const mean = (
      await runner.forward([{ ids, hooks: ['blocks.0.hook_resid_mid'], logits: false }])
    )[0].hooks.get('blocks.0.hook_resid_mid')!;
    const average = new Float32Array(dims.dModel);
    for (let i = 0; i < dims.dModel; i++) {
      let sum = 0;
      for (let p = 0; p < n; p++) sum += mean[p * dims.dModel + i];
      average[i] = sum / n;
    }
    checked[2] = { ...checked[2], values: average };
    const [local] = await runner.forward([{ ids, hooks, logits: false, patches: checked }]);
    for (const hook of hooks.slice(1))
      expect(maxAbsDiff(floats(response.activations[hook]), local.hooks.get(hook)!), hook).toBeLessThan(
        CLOSE,
      );
  });

  it('GraphQL activations: shape, tensor with null where masked, patches', async () => {
    const data = await ok(
      `query ($text: String!, $patches: [HookPatchInput!]) {
         activations(text: $text, hooks: ["${scores}", "blocks.1.hook_resid_post"], patches: $patches) {
           tokens { id } hooks { hook shape tensor } } }`,
      { text, patches: [{ hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 2, positions: [1, 3] }] },
    );
    const ids = runner.tokenizer.encode(text);
    const n = ids.length;
    const [scoreView, resid] = data.activations.hooks;
    expect(scoreView.shape).toEqual([4, n, n]);
    expect(scoreView.tensor[1]).toBeNull();
    const [local] = await runner.forward([
      {
        ids,
        hooks: ['blocks.1.hook_resid_post'],
        logits: false,
        patches: toHookPatches(
          [{ hook: 'blocks.0.attn.hook_z', mode: 'zero', head: 2, positions: [1, 3] }],
          runner.manifest.dims,
          n,
        ),
      },
    ]);
    expect(maxAbsDiff(resid.tensor, local.hooks.get('blocks.1.hook_resid_post')!)).toBeLessThan(CLOSE);
    const bad = await gql(
      `{ activations(text: "hi", hooks: ["hook_embed"], patches: [{hook: "blocks.0.attn.hook_q", mode: zero, head: 9}]) { tokens { id } } }`,
    );
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.errors?.[0]?.message).toMatch(/patch\[0\]: head 9 is out of range: the model has heads 0-3/);
    const scoreValues = await gql(
      `{ activations(text: "hi there", hooks: ["${scores}"]) { hooks { values } } }`,
    );
    expect(scoreValues.errors?.[0]?.message).toMatch(/masked entries.*ask for tensor/);
  });

  it('logitLens, directLogitAttribution and activationPatching give what the library gives', async () => {
    const ids = runner.tokenizer.encode(text);
    const paris = runner.tokenizer.encode(' Paris')[0];
    const lens = await ok(
      `{ logitLens(text: "${text}", token: " Paris", top: 3) { token { id } cells { top { id probability } rank probability } } }`,
    );
    const local = await logitLens(runner, ids, { topK: 3, token: paris });
    expect(lens.logitLens.token.id).toBe(paris);
    expect(lens.logitLens.cells.map((l: Json[]) => l.map((c) => c.rank))).toEqual(local.chosen!.rank);
    expect(
      maxAbsDiff(
        lens.logitLens.cells.flat().map((c: Json) => c.probability),
        local.chosen!.probability.flat(),
      ),
    ).toBeLessThan(CLOSE);

    const dla = await ok(
      `{ directLogitAttribution(text: "${text}", token: " Paris", wrong: " London") { logit layers { heads mlp attentionBias } embed lnBias } }`,
    );
    const want = await directLogitAttribution(runner, ids, paris, runner.tokenizer.encode(' London')[0]);
    expect(Math.abs(dla.directLogitAttribution.logit - want.logit)).toBeLessThan(CLOSE);
    expect(
      maxAbsDiff(
        dla.directLogitAttribution.layers.flatMap((l: Json) => l.heads),
        want.heads.flat(),
      ),
    ).toBeLessThan(CLOSE);

    const sweep = await ok(
      `{ activationPatching(clean: "Mary met John, John thanked", corrupted: "Mary met John, Mary thanked", answer: " Mary", wrong: " John", hook: z) { hook cleanDiff diffs scores } }`,
    );
    const direct = await activationPatching(runner, {
      clean: runner.tokenizer.encode('Mary met John, John thanked'),
      corrupted: runner.tokenizer.encode('Mary met John, Mary thanked'),
      answer: runner.tokenizer.encode(' Mary')[0],
      wrong: runner.tokenizer.encode(' John')[0],
      hook: 'z',
    });
    expect(sweep.activationPatching.hook).toBe('z');
    expect(maxAbsDiff(sweep.activationPatching.diffs.flat(), direct.diffs.flat())).toBeLessThan(CLOSE);
    const unequal = await gql(
      `{ activationPatching(clean: "a b c", corrupted: "a b", answer: " a", wrong: " b", hook: resid_pre) { hook } }`,
    );
    expect(unequal.errors?.[0]?.message).toMatch(/same token length: 3 vs 2 tokens/);
  });
});
