import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type ExplainerApi, explainerServiceClient } from '@loupe/common/grpc';
import { pearson, syntheticUnit } from '@loupe/explainer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type LlmServer, type RecordedRequest, startLlmServer } from '../support/llm-server.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// The explainer gRPC service as a real process, on the suite's database, with a local LLM server.
let scratch: string;
let db: TestDatabase;
let service: RunningProcess;
let llm: LlmServer;
let client: ExplainerApi;

const unit = syntheticUnit({ seed: 21, firesOn: ' river', records: 8, length: 16 });
const wireRecords = {
  top: unit.top.map((r, i) => ({ window: i, tokens: r.tokens, values: r.activations })),
  random: unit.random.map((r, i) => ({ window: 100 + i, tokens: r.tokens, values: r.activations })),
};

// biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field
type Reply = any;
function call(method: string, request: object): Promise<Reply> {
  return (client as unknown as Record<string, (r: object) => Promise<Reply>>)[method](request);
}

function jsonModel(request: RecordedRequest) {
  const explanation = /Explanation: (.*)\n/.exec(request.lastUser)?.[1] ?? '';
  if (explanation.includes('malformed')) return { content: '{"sequences":' };
  const named = new Set([...explanation.matchAll(/"([^"]*)"/g)].map((m) => m[1]));
  const { sequences } = JSON.parse(request.lastUser.slice(request.lastUser.indexOf('\n') + 1));
  return {
    content: JSON.stringify({
      sequences: sequences.map((s: { tokens: string[] }) => ({
        activations: s.tokens.map((token) => ({ token, activation: named.has(token.trim()) ? 10 : 0 })),
      })),
    }),
  };
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-explainer-grpc-'));
  db = await startTestDatabase();
  llm = await startLlmServer({ respond: jsonModel });
  const address = `127.0.0.1:${await freePort()}`;
  service = startProcess('services/explainer/dist/main.js', {
    LOUPE_EXPLAINER_ADDR: address,
    ...databaseEnv(db),
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: llm.url,
    // nothing listens here: record fetches fail as UNAVAILABLE
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
  });
  client = explainerServiceClient(address);
  await client.ready().catch((e: Error) => Promise.reject(new Error(`${e.message}\n${service.stderr()}`)));
});

afterAll(async () => {
  client?.close();
  await service?.stop();
  await llm?.close();
  await db?.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('ExplainerService over gRPC', () => {
  it('Explain with the baseline, saved and found again by SearchExplanations', async () => {
    const reply = await call('Explain', {
      unit: 'tiny/blocks.0.mlp.hook_post/3',
      records: wireRecords,
      save: true,
      seed: 4,
    });
    expect(reply.explanation).toBe('the token "river".');
    expect(reply.explainerModel).toBe('baseline-statistical');
    expect(reply.score.score).toBeGreaterThan(0.9);
    expect(reply.score.ciLow).toBeLessThanOrEqual(reply.score.score);
    expect(JSON.parse(reply.score.provenanceJson)).toMatchObject({
      simulator_model: 'baseline-statistical',
      seed: 4,
      simulator_method: 'baseline',
      // 8 top records: OpenAI's split deals 2 per split and scores the valid ones (positions 2 and 6)
      record_ids: { top: ['top:2:window:2', 'top:6:window:6'] },
      record_split: { name: 'openai', top_per_split: 2 },
    });
    const search = await call('SearchExplanations', { query: 'rivers', unitPrefix: 'tiny/' });
    expect(search.hits).toHaveLength(1);
    expect(search.hits[0]).toMatchObject({ id: reply.explanationId, unit: 'tiny/blocks.0.mlp.hook_post/3' });
    // saved with an embedding from the configured server, so semantic search finds it too
    expect(llm.embeddingRequests).toContainEqual(['the token "river".']);
    const semantic = await call('SearchExplanations', { query: 'river tokens', semantic: true });
    expect(semantic.hits[0]).toMatchObject({ id: reply.explanationId });
    expect(semantic.hits[0].relevance).toBeGreaterThan(0.5);
  });

  it('Score through an LLM given in the request, matching an independent Pearson', async () => {
    const reply = await call('Score', {
      explanation: 'the word "river".',
      records: wireRecords,
      llm: { baseUrl: llm.url, model: 'local', simulator: 'json' },
    });
    const actual = [...unit.top, ...unit.random].flatMap((r) => r.activations);
    const simulated = [...reply.score.simulatedTop, ...reply.score.simulatedRandom].flatMap((s) => s.values);
    expect(reply.score.score).toBeCloseTo(pearson(actual, simulated).value as number, 6);
    expect(reply.score.usage.calls).toBe(1);
  });

  it('Simulate reports malformed replies as failures; constant records give no score, with the reason', async () => {
    const sim = await call('Simulate', {
      explanation: 'malformed',
      sequences: [{ tokens: ['a', 'b'] }],
      llm: { baseUrl: llm.url, simulator: 'json' },
    });
    expect(sim.sequences[0]).toMatchObject({ ok: false, failure: expect.stringMatching(/not JSON/) });
    const flat = {
      top: [{ tokens: ['a', 'b'], values: [1, 1] }],
      random: [{ tokens: ['c', 'd'], values: [1, 1] }],
    };
    const score = await call('Score', { explanation: 'the token "a"', records: flat });
    expect(score.score.score).toBeUndefined();
    expect(score.score.reason).toBe('true activations are constant');
  });

  it('bad requests are INVALID_ARGUMENT with what is allowed', async () => {
    const bad = await call('Score', { explanation: 'x', records: wireRecords, method: 'vibes' }).catch(
      (e) => e,
    );
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/method "vibes": expected one of simulation, detection, fuzzing/);
    const noRecords = await call('Explain', {}).catch((e) => e);
    expect(noRecords.code).toBe(grpc.status.INVALID_ARGUMENT);
    const missing = await call('GetJob', { id: '00000000-0000-0000-0000-000000000000' }).catch((e) => e);
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });

  it('a scoring job whose records cannot be fetched retries, then marks the units failed', async () => {
    const started = await call('StartScoringJob', {
      units: 'tiny/blocks.0.mlp.hook_post/0-2',
      method: 'detection',
      maxAttempts: 2,
    });
    expect(started).toMatchObject({ status: 'queued', unitsTotal: 3, method: 'detection' });
    let job = started;
    for (let i = 0; i < 300 && !['done', 'failed'].includes(job.status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = await call('GetJob', { id: started.id });
    }
    expect(job).toMatchObject({ status: 'done', unitsDone: 0, unitsFailed: 3 });
    const cancelled = await call('CancelJob', { id: started.id });
    expect(cancelled.status).toBe('done');
  });
});
