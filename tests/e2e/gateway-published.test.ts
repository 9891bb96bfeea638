import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataset, writeDataset } from '../support/openai-dataset.js';
import { runCli } from '../support/process.js';
import { type Json, type Stack, startStack } from '../support/stack.js';

// Published explanations on the unit page: the tiny model's layer-1 neurons captured by a real capture
// job, OpenAI-format explanations of the same neurons imported from a folder, and a re-scoring job
// started through GraphQL, all read back through the gateway next to each other.
const HOOK = 'blocks.1.mlp.hook_post';
const UNIT = `tiny/${HOOK}/2`;
const EXPLANATIONS = `query ($id: ID!) {
  unit(id: $id) {
    ... on Neuron {
      explanations(first: 10) {
        totalCount
        edges { node { text explainerModel simulatorModel baseline
          score { value reason provenance { explainerModel simulatorModel recordIds { top random } json } } } }
      }
    }
  }
}`;

let stack: Stack;
const dataset = generateDataset({ layers: 2, neurons: 4, records: 8, length: 16, seed: 3 });
dataset[6].explanations[1].score = null; // 1/2: OpenAI published no score for its second explanation

async function waitDone(id: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const job = (await stack.gql('query ($id: ID!) { scoringJob(id: $id) { status error } }', { id }))
      .scoringJob;
    if (job.status === 'done') return;
    if (['failed', 'cancelled', 'budget_exhausted'].includes(job.status))
      throw new Error(`scoring job ${id} ended ${job.status}: ${job.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`scoring job ${id} never finished`);
}

beforeAll(async () => {
  stack = await startStack();
  const capture = await stack.gql(
    'mutation ($input: StartCaptureInput!) { startCapture(input: $input) { id } }',
    { input: { hooks: [HOOK], maxTokens: 300 } },
    stack.auth,
  );
  const id = capture.startCapture.id;
  for (let i = 0; i < 1200; i++) {
    const job = (await stack.gql('query ($id: ID!) { captureJob(id: $id) { status error } }', { id }))
      .captureJob;
    if (job.status === 'done') break;
    if (job.status === 'failed') throw new Error(`capture failed: ${job.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const folder = path.join(stack.scratch, 'openai');
  await writeDataset(folder, dataset);
  const imported = await runCli(
    [
      'import',
      'openai-neurons',
      '--source',
      folder,
      '--model',
      'tiny',
      '--layers',
      '1',
      '--neurons',
      '0-3',
      '--json',
    ],
    stack.env,
  );
  if (imported.code !== 0) throw new Error(`import failed:\n${imported.stderr}`);
}, 300_000);

afterAll(async () => {
  await stack?.stop();
});

describe('published explanations through GraphQL', () => {
  it("show on the unit page with OpenAI's score, a null one with its reason, and where they came from", async () => {
    const want = dataset.find((n) => n.layer === 1 && n.neuron === 2)!;
    const { unit } = await stack.gql(EXPLANATIONS, { id: UNIT });
    const nodes = unit.explanations.edges.map((e: Json) => e.node);
    expect(nodes.map((n: Json) => n.text).sort()).toEqual(want.explanations.map((e) => e.explanation).sort());
    for (const e of want.explanations) {
      const node = nodes.find((n: Json) => n.text === e.explanation);
      expect(node.score.value).toBe(e.score);
      if (e.score === null) expect(node.score.reason).toMatch(/no ev_correlation_score/);
      expect(node.baseline).toBe(false);
      expect(node.score.provenance.explainerModel).toMatch(/published by OpenAI/);
      expect(node.score.provenance.simulatorModel).toMatch(/published by OpenAI/);
      expect(JSON.parse(node.score.provenance.json)).toMatchObject({ published_by: 'OpenAI' });
    }
  });

  it('a scoring job started through GraphQL re-scores on the published records, beside the published score', async () => {
    const started = await stack.gql(
      'mutation ($input: StartScoringJobInput!) { startScoringJob(input: $input) { id } }',
      { input: { units: `tiny/${HOOK}/2` } },
      stack.auth,
    );
    await waitDone(started.startScoringJob.id);
    const { unit } = await stack.gql(EXPLANATIONS, { id: UNIT });
    const nodes = unit.explanations.edges.map((e: Json) => e.node);
    expect(unit.explanations.totalCount).toBe(3);
    const rescore = nodes.find((n: Json) => n.baseline);
    expect(rescore, JSON.stringify(nodes)).toBeDefined();
    // the held-out half of the published top and random records, by their published positions
    expect(rescore.score.provenance.recordIds).toEqual({
      top: ['openai:top:1', 'openai:top:3', 'openai:top:5', 'openai:top:7'],
      random: ['openai:random:1', 'openai:random:3', 'openai:random:5', 'openai:random:7'],
    });
  });
});
