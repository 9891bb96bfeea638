import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { allHooks } from '@loupe/common';
import { Gpt2Runner } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient, floats } from '../support/grpc.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// The compiled capture service as a real process, spoken to over real gRPC.
let db: TestDatabase;
let service: RunningProcess;
let client: CaptureApi;
let runner: Gpt2Runner;

beforeAll(async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-capture-'));
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  const address = `127.0.0.1:${await freePort()}`;
  db = await startTestDatabase();
  service = startProcess('services/capture/dist/main.js', {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: address,
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(db),
  });
  client = await captureClient(address);
  runner = await Gpt2Runner.load(path.join(dataDir, 'models', 'tiny'), { device: 'cpu', intraOpThreads: 1 });
});

afterAll(async () => {
  client?.close();
  await runner?.close();
  await service?.stop();
  await db?.stop();
});

async function expectGrpcError(call: Promise<unknown>, code: status, message: RegExp): Promise<void> {
  const error = await call.then(
    () => null,
    (e: { code: number; details: string }) => e,
  );
  expect(error, 'the call should have failed').not.toBeNull();
  expect({ code: error!.code, details: error!.details }).toMatchObject({ code });
  expect(error!.details).toMatch(message);
}

describe('CaptureService over gRPC', () => {
  it('describes the model and the provider it runs on', async () => {
    const info = await client.ModelInfo({});
    expect(info).toMatchObject({
      name: 'tiny',
      nLayer: 2,
      dModel: 64,
      nHead: 4,
      dMlp: 256,
      vocabSize: 50257,
      executionProvider: 'cpu',
    });
    expect(info.hooks.map((h) => h.name)).toEqual(allHooks(2));
    expect(info.hooks.find((h) => h.name === 'blocks.0.mlp.hook_post')?.width).toBe(256);
  });

  it('tokenizes with the real GPT-2 ids', async () => {
    expect(await client.Tokenize({ text: 'Hello world' })).toEqual({
      ids: [15496, 995],
      tokens: ['Hello', ' world'],
    });
  });

  it('returns activations identical to an in-process run, for text and for ids', async () => {
    const hooks = ['blocks.1.mlp.hook_post', 'blocks.0.hook_resid_pre', 'ln_final.hook_normalized'];
    const response = await client.Activations({ text: 'The capital of France is', hooks, logits: true });
    const [local] = await runner.forward([{ ids: response.ids, hooks, logits: true }]);
    for (const hook of hooks) {
      const tensor = response.activations[hook];
      expect(tensor.shape).toEqual([response.ids.length, hook.includes('mlp') ? 256 : 64]);
      expect(maxAbsDiff(floats(tensor), local.hooks.get(hook)!)).toBe(0);
    }
    expect(maxAbsDiff(floats(response.logits), local.logits!)).toBe(0);
    const byIds = await client.Activations({ ids: { ids: response.ids }, hooks });
    expect(floats(byIds.activations[hooks[0]])).toEqual(floats(response.activations[hooks[0]]));
  });

  it('gives every one of many concurrent requests its own answer (dynamic batching)', async () => {
    const texts = Array.from({ length: 12 }, (_, i) => `Request number ${i} says${' hello'.repeat(i)}`);
    const hooks = ['blocks.1.hook_resid_post'];
    const answers = await Promise.all(texts.map((text) => client.Activations({ text, hooks })));
    for (const [i, answer] of answers.entries()) {
      const [local] = await runner.forward([{ ids: answer.ids, hooks, logits: false }]);
      expect(answer.ids).toEqual(runner.tokenizer.encode(texts[i]));
      expect(maxAbsDiff(floats(answer.activations[hooks[0]]), local.hooks.get(hooks[0])!)).toBeLessThan(1e-5);
    }
  });

  it('generates steered and unsteered continuations side by side with one seed', async () => {
    const request = { prompt: 'Once upon a time', maxTokens: 8, temperature: 1, topK: 50, seed: 1234 };
    const plain = await client.Generate(request);
    expect(plain.steered.ids).toEqual(plain.unsteered.ids);
    expect(plain.unsteered.ids).toHaveLength(8);
    expect(plain.unsteered.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp))).toBe(true);
    expect(plain.unsteered.text).toBe(runner.tokenizer.decode(plain.unsteered.ids));
    expect((await client.Generate(request)).unsteered.ids).toEqual(plain.unsteered.ids);
    const vector = Array.from({ length: 64 }, (_, i) => (i % 2 ? 1 : -1));
    const steered = await client.Generate({
      ...request,
      steering: [{ hook: 'blocks.0.hook_resid_pre', vector, strength: 8 }],
    });
    expect(steered.unsteered.ids).toEqual(plain.unsteered.ids);
    expect(steered.steered.ids).not.toEqual(plain.unsteered.ids);
  });

  it('runs a capture job it was asked for and serves the neuron records it made', async () => {
    const hook = 'blocks.1.mlp.hook_post';
    const started = await client.StartCapture({ dataset: 'default', hooks: [hook], maxTokens: 3000 });
    expect(started).toMatchObject({ model: 'tiny', hooks: [hook], totalTokens: 3000 });
    let job = started;
    for (let i = 0; i < 240 && job.status !== 'done' && job.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      job = await client.GetCaptureJob({ id: started.id });
    }
    expect(job).toMatchObject({ status: 'done', phase: 'done', windowsDone: job.totalWindows, error: '' });
    const record = await client.NeuronRecord({ hook, neuron: 7 });
    expect(record).toMatchObject({ model: 'tiny', hook, neuron: 7, jobId: started.id, tokens: 3000 });
    expect(record.top).toHaveLength(20);
    expect(record.random).toHaveLength(20);
    expect(record.quantiles.map((q) => [q.from, q.to])).toEqual([
      [0.5, 0.75],
      [0.75, 0.9],
      [0.9, 0.99],
      [0.99, 1],
    ]);
    const windowMax = (w: { values: number[] }) => Math.max(...w.values);
    expect(windowMax(record.top[0])).toBeCloseTo(record.maxActivation, 5);
    for (let i = 1; i < record.top.length; i++)
      expect(windowMax(record.top[i])).toBeLessThanOrEqual(windowMax(record.top[i - 1]));
    for (const w of [...record.top, ...record.random]) {
      expect(w.ids.length).toBe(w.values.length);
      expect(w.tokens).toEqual(runner.tokenizer.tokenStrings(w.ids));
    }
    // the record's values are the model's activations on those tokens
    const [direct] = await runner.forward([{ ids: record.top[0].ids, hooks: [hook], logits: false }]);
    const column = Array.from(
      { length: record.top[0].ids.length },
      (_, t) => direct.hooks.get(hook)![t * 256 + 7],
    );
    expect(maxAbsDiff(column, record.top[0].values)).toBeLessThan(1e-5);
    expect(record.histogram.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // a caller that holds this job's record hears only that it is unchanged; any other job id gets the
    // whole record, the same as the first answer (the second comes from the service's record cache)
    const known = await client.NeuronRecord({ hook, neuron: 7, knownJobId: started.id });
    expect(known).toMatchObject({ jobId: started.id, unchanged: true, top: [], random: [], quantiles: [] });
    const other = await client.NeuronRecord({
      hook,
      neuron: 7,
      knownJobId: '00000000-0000-0000-0000-000000000000',
    });
    expect(other).toEqual(record);
    expect(record.unchanged).toBe(false);

    await expectGrpcError(
      client.StartCapture({ dataset: '/etc', hooks: [hook], maxTokens: 100 }),
      status.INVALID_ARGUMENT,
      /must be "default" or a path inside/,
    );
    await expectGrpcError(
      client.StartCapture({ dataset: 'default', hooks: [hook], maxTokens: 0 }),
      status.INVALID_ARGUMENT,
      /max_tokens must be/,
    );
    await expectGrpcError(
      client.GetCaptureJob({ id: '00000000-0000-0000-0000-000000000000' }),
      status.NOT_FOUND,
      /unknown capture job/,
    );
    await expectGrpcError(
      client.GetCaptureJob({ id: 'nope' }),
      status.INVALID_ARGUMENT,
      /not a capture job id/,
    );
    await expectGrpcError(
      client.NeuronRecord({ hook, neuron: 256 }),
      status.INVALID_ARGUMENT,
      /neurons 0-255/,
    );
    await expectGrpcError(
      client.NeuronRecord({ hook: 'blocks.1.hook_resid_post', neuron: 1 }),
      status.INVALID_ARGUMENT,
      /mlp.hook_post only/,
    );
    await expectGrpcError(
      client.NeuronRecord({ hook: 'blocks.0.mlp.hook_post', neuron: 1 }),
      status.NOT_FOUND,
      /no records for tiny\/blocks.0.mlp.hook_post\/1 yet/,
    );
  });

  it('refuses bad input with clear messages and keeps serving', async () => {
    await expectGrpcError(client.Tokenize({ text: '' }), status.INVALID_ARGUMENT, /text is empty/);
    await expectGrpcError(
      client.Activations({ text: 'word '.repeat(300), hooks: ['hook_embed'] }),
      status.INVALID_ARGUMENT,
      /input has \d+ tokens; model tiny accepts at most 256/,
    );
    await expectGrpcError(
      client.Activations({ text: 'hi', hooks: ['blocks.7.hook_resid_pre'] }),
      status.INVALID_ARGUMENT,
      /unknown hook "blocks.7.hook_resid_pre": the model has layers 0-1/,
    );
    await expectGrpcError(
      client.Activations({ text: 'hi', hooks: ['blocks.0.mlp'] }),
      status.INVALID_ARGUMENT,
      /unknown hook/,
    );
    await expectGrpcError(
      client.ModelInfo({ model: 'gpt9' }),
      status.NOT_FOUND,
      /unknown model "gpt9"; available: tiny/,
    );
    await expectGrpcError(
      client.Activations({
        text: 'hi',
        hooks: [],
        steering: [{ hook: 'blocks.0.hook_resid_pre', vector: [1, 2], strength: 1 }],
      }),
      status.INVALID_ARGUMENT,
      /ask for at least one hook/,
    );
    await expectGrpcError(
      client.Activations({
        text: 'hi',
        hooks: ['hook_embed'],
        steering: [{ hook: 'blocks.0.hook_resid_pre', vector: [1, 2], strength: 1 }],
      }),
      status.INVALID_ARGUMENT,
      /has 2 values; d_model is 64/,
    );
    await expectGrpcError(
      client.Activations({
        text: 'hi',
        hooks: ['hook_embed'],
        steering: [{ hook: 'blocks.0.hook_mlp_out', vector: [], strength: 1 }],
      }),
      status.INVALID_ARGUMENT,
      /cannot be steered; use blocks.\{L\}.hook_resid_pre/,
    );
    await expectGrpcError(
      client.Generate({ prompt: 'hi', maxTokens: 0 }),
      status.INVALID_ARGUMENT,
      /max_tokens must be 1-256/,
    );
    await expectGrpcError(
      client.Activations({ ids: { ids: [50257] }, hooks: ['hook_embed'] }),
      status.INVALID_ARGUMENT,
      /token id 50257 is outside the vocabulary/,
    );
    expect((await client.Tokenize({ text: 'still here' })).ids.length).toBeGreaterThan(0);
    expect(service.child.exitCode).toBeNull();
  });
});
