import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDataset, importDataset, UNMATCHED_TOKENS } from '../support/openai-dataset.js';
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
  await importDataset(path.join(stack.scratch, 'openai'), dataset, stack.env);
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
    // OpenAI's split of the published records, by their published positions: top records dealt four
    // ways (train, calibration, valid, test) and random ones three ways (calibration, valid, test),
    // two each of 8; the score uses valid, as OpenAI's scoring did
    expect(rescore.score.provenance.recordIds).toEqual({
      top: ['openai:top:2', 'openai:top:6'],
      random: ['openai:random:1', 'openai:random:4'],
    });
  });

  it('a published neuron by id, captured or not, with its records, moments and explanations', async () => {
    const query = `query ($id: ID!) {
      publishedNeuron(unitId: $id) {
        unitId layer neuron source publisher mean variance skewness kurtosis quantileBoundaries bestScore bestExplanation
        top { tokens tokenIds activations } random { activations } quantiles { activations }
        explanations { totalCount edges { node { text score { value } } } }
      }
    }`;
    // layer 0 was imported but never captured: only the published view knows it
    const want = dataset.find((n) => n.layer === 0 && n.neuron === 1)!;
    const { publishedNeuron: p } = await stack.gql(query, { id: `tiny/blocks.0.mlp.hook_post/1` });
    const best = Math.max(...want.explanations.map((e) => e.score ?? -Infinity));
    expect(p).toMatchObject({
      unitId: 'tiny/blocks.0.mlp.hook_post/1',
      layer: 0,
      neuron: 1,
      publisher: 'published by OpenAI',
      mean: want.moments.mean,
      variance: want.moments.variance,
      skewness: want.moments.skewness,
      kurtosis: want.moments.kurtosis,
      quantileBoundaries: want.quantileBoundaries,
      bestScore: best,
      bestExplanation: want.explanations.find((e) => e.score === best)!.explanation,
    });
    expect(p.top.map((r: Json) => r.activations)).toEqual(want.top.map((r) => r.activations));
    expect(p.top.map((r: Json) => r.tokens)).toEqual(want.top.map((r) => r.tokens));
    expect(p.random.map((r: Json) => r.activations)).toEqual(want.random.map((r) => r.activations));
    expect(p.quantiles.map((q: Json[]) => q.map((r) => r.activations))).toEqual(
      want.quantiles.map((q) => q.map((r) => r.activations)),
    );
    const tokens = p.top.flatMap((r: Json) => r.tokens) as string[];
    const ids = p.top.flatMap((r: Json) => r.tokenIds) as (number | null)[];
    tokens.forEach((t, i) => {
      if (UNMATCHED_TOKENS.includes(t)) expect(ids[i], t).toBeNull();
      else expect(ids[i], t).toEqual(expect.any(Number));
    });
    expect(p.explanations.totalCount).toBe(2);
    expect((await stack.gql(query, { id: `tiny/${HOOK}/9` })).publishedNeuron).toBeNull();

    // on a captured neuron's page, beside Loupe's own statistics
    const page = await stack.gql(
      `query ($a: ID!, $b: ID!) {
        a: unit(id: $a) { ... on Neuron { stats { maxActivation } published { publisher bestScore } } }
        b: unit(id: $b) { ... on Neuron { published { publisher } } }
      }`,
      { a: UNIT, b: `tiny/${HOOK}/9` },
    );
    expect(page.a.published.publisher).toBe('published by OpenAI');
    expect(page.a.stats.maxActivation).toEqual(expect.any(Number));
    expect(page.b.published).toBeNull();
  });

  it('browses imported neurons by published score, and the per-layer picture', async () => {
    const best = dataset.map((n) => {
      const scores = n.explanations.map((e) => e.score).filter((x): x is number => x !== null);
      return {
        unit: `tiny/blocks.${n.layer}.mlp.hook_post/${n.neuron}`,
        layer: n.layer,
        neuron: n.neuron,
        score: Math.max(...scores),
      };
    });
    const above = best
      .filter((n) => n.score >= 0.2)
      .sort((a, b) => b.score - a.score || a.layer - b.layer || a.neuron - b.neuron);
    const list = `query ($after: String) {
      publishedNeurons(model: "tiny", minScore: 0.2, first: 2, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { score node { unitId bestScore } }
      }
    }`;
    const seen: [string, number][] = [];
    let after: string | null = null;
    for (let i = 0; i < 10; i++) {
      const { publishedNeurons: page } = await stack.gql(list, { after });
      expect(page.totalCount).toBe(above.length);
      seen.push(...page.edges.map((e: Json) => [e.node.unitId, e.score] as [string, number]));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(above.map((n) => [n.unit, n.score]));

    const { publishedScoresByLayer: picture } = await stack.gql(
      'query { publishedScoresByLayer(model: "tiny", bins: 4, threshold: 0.5) { edges threshold layers { layer neurons unscored mean atLeastThreshold histogram } } }',
    );
    expect(picture.edges).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(picture.layers.map((l: Json) => l.layer)).toEqual([0, 1]);
    for (const l of picture.layers) {
      const scores = best.filter((n) => n.layer === l.layer).map((n) => n.score);
      const histogram = [0, 0, 0, 0];
      for (const s of scores) histogram[Math.min(3, Math.floor((s + 1) / 0.5))]++;
      expect(l).toMatchObject({
        neurons: scores.length,
        unscored: 0,
        atLeastThreshold: scores.filter((s) => s >= 0.5).length,
        histogram,
      });
      expect(l.mean).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / scores.length, 12);
    }
  });
});
