import { status as GrpcStatus } from '@grpc/grpc-js';
import { explainerServiceClient } from '@loupe/common/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureClient, saeClient } from '../support/grpc.js';
import { type Json, type Stack, startStack } from '../support/stack.js';

// "The first hour" over real services. The `jobs` query: a capture job, an SAE training job on its
// activations and a scoring job on its neurons, listed newest first, filtered, paged; each service's
// list RPC refusing a status it does not have with INVALID_ARGUMENT. And neuron pages' logit tokens and
// nearest neurons: the gateway's Neuron fields equal the capture service's NeuronWeights (whose numbers
// are checked against float64 in services/model/src/runtime/neuron-weights.test.ts).
const RESID = 'blocks.1.hook_resid_pre';
const NEURONS = 'blocks.1.mlp.hook_post';
const JOBS = `query ($kind: JobKind, $status: String, $first: Int, $after: String) {
  jobs(kind: $kind, status: $status, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges {
      cursor
      node {
        __typename id kind status progress createdAt error
        ... on CaptureJob { model hooks }
        ... on TrainingJob { saeId }
        ... on ScoringJob { sources unitsTotal unitsDone }
      }
    }
  }
}`;

let stack: Stack;
const ids = { capture: '', training: '', scoring: '' };

async function waitDone(field: string, id: string): Promise<Json> {
  for (let i = 0; i < 1200; i++) {
    const job = (await stack.gql(`query ($id: ID!) { ${field}(id: $id) { status error } }`, { id }))[field];
    if (job.status === 'done') return job;
    if (['failed', 'cancelled', 'budget_exhausted'].includes(job.status))
      throw new Error(`${field} ${id} ended ${job.status}: ${job.error}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${field} ${id} never finished`);
}

beforeAll(async () => {
  stack = await startStack();
  const capture = await stack.gql(
    'mutation ($input: StartCaptureInput!) { startCapture(input: $input) { id } }',
    { input: { hooks: [RESID, NEURONS], maxTokens: 600 } },
    stack.auth,
  );
  ids.capture = capture.startCapture.id;
  await waitDone('captureJob', ids.capture);
  const training = await stack.gql(
    'mutation ($input: StartTrainingInput!) { startTraining(input: $input) { id } }',
    { input: { captureJobId: ids.capture, hook: RESID, width: 32, steps: 5 } },
    stack.auth,
  );
  ids.training = training.startTraining.id;
  const scoring = await stack.gql(
    'mutation ($input: StartScoringJobInput!) { startScoringJob(input: $input) { id } }',
    { input: { units: `tiny/${NEURONS}/0-1` } },
    stack.auth,
  );
  ids.scoring = scoring.startScoringJob.id;
  await waitDone('trainingJob', ids.training);
  await waitDone('scoringJob', ids.scoring);
}, 240_000);
afterAll(() => stack?.stop());

describe('the jobs query', () => {
  it('lists the three kinds newest first with their progress, creation time and what they made', async () => {
    const { jobs } = await stack.gql(JOBS);
    expect(jobs.totalCount).toBe(3);
    expect(jobs.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    const nodes = jobs.edges.map((e: Json) => e.node);
    expect(nodes.map((n: Json) => [n.__typename, n.kind, n.id])).toEqual([
      ['ScoringJob', 'SCORING', ids.scoring],
      ['TrainingJob', 'TRAINING', ids.training],
      ['CaptureJob', 'CAPTURE', ids.capture],
    ]);
    for (const node of nodes) {
      expect(node).toMatchObject({ status: 'done', progress: 1, error: null });
      expect(node.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    const times = nodes.map((n: Json) => n.createdAt);
    expect([...times].sort().reverse()).toEqual(times);
    expect(nodes[0]).toMatchObject({ sources: [`tiny/${NEURONS}`], unitsTotal: 2, unitsDone: 2 });
    expect(nodes[1].saeId).toEqual(expect.any(String));
    expect(nodes[2]).toMatchObject({ model: 'tiny', hooks: [RESID, NEURONS].sort() });
    // the same jobs as each one's own query reports
    const { trainingJob } = await stack.gql('query ($id: ID!) { trainingJob(id: $id) { saeId createdAt } }', {
      id: ids.training,
    });
    expect(trainingJob).toEqual({ saeId: nodes[1].saeId, createdAt: nodes[1].createdAt });
  });

  it('filters by kind and status, and pages with cursors', async () => {
    const training = (await stack.gql(JOBS, { kind: 'TRAINING' })).jobs;
    expect(training.totalCount).toBe(1);
    expect(training.edges.map((e: Json) => e.node.id)).toEqual([ids.training]);
    expect((await stack.gql(JOBS, { status: 'done' })).jobs.totalCount).toBe(3);
    const queued = (await stack.gql(JOBS, { status: 'queued' })).jobs;
    expect(queued).toMatchObject({ totalCount: 0, edges: [], pageInfo: { hasNextPage: false } });
    expect((await stack.gql(JOBS, { kind: 'SCORING', status: 'budget_exhausted' })).jobs.totalCount).toBe(0);

    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const page: Json = (await stack.gql(JOBS, { first: 1, after })).jobs;
      expect(page.totalCount).toBe(3);
      seen.push(...page.edges.map((e: Json) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual([ids.scoring, ids.training, ids.capture]);
  });

  it('refuses unknown statuses, foreign cursors and pages over the limit, naming what is allowed', async () => {
    const error = async (variables: Record<string, unknown>) =>
      (await stack.post(JOBS, variables)).errors?.[0];
    expect(await error({ status: 'finished' })).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: expect.stringMatching(/unknown job status "finished": use one of queued, running, done/),
    });
    expect(await error({ kind: 'CAPTURE', status: 'budget_exhausted' })).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: expect.stringMatching(/unknown capture job status "budget_exhausted"/),
    });
    expect(await error({ after: 'bogus' })).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: expect.stringMatching(/is not one a job list gave out/),
    });
    expect(await error({ first: 101 })).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: 'first must be 0-100, got 101',
    });
  });

  it('each service lists its own jobs, and refuses a status it has not with INVALID_ARGUMENT', async () => {
    const capture = await captureClient(stack.env.LOUPE_CAPTURE_ADDR);
    const sae = await saeClient(stack.env.LOUPE_SAE_ADDR);
    const explainer = explainerServiceClient(stack.env.LOUPE_EXPLAINER_ADDR);
    try {
      const all = { status: '', pageSize: 0, pageToken: '' };
      expect((await capture.ListCaptureJobs(all)).jobs.map((j) => j.id)).toEqual([ids.capture]);
      expect((await sae.ListTrainingJobs(all)).jobs.map((j) => j.id)).toEqual([ids.training]);
      const scoring = await explainer.ListJobs(all);
      expect(scoring).toMatchObject({ total: 1, nextPageToken: '', jobs: [{ id: ids.scoring }] });
      const invalid = { code: GrpcStatus.INVALID_ARGUMENT };
      await expect(capture.ListCaptureJobs({ ...all, status: 'budget_exhausted' })).rejects.toMatchObject({
        ...invalid,
        details: expect.stringMatching(/unknown capture job status "budget_exhausted": use one of/),
      });
      await expect(sae.ListTrainingJobs({ ...all, status: 'Done' })).rejects.toMatchObject({
        ...invalid,
        details: expect.stringMatching(/unknown training job status "Done"/),
      });
      await expect(explainer.ListJobs({ ...all, status: 'finished' })).rejects.toMatchObject({
        ...invalid,
        details: expect.stringMatching(/unknown scoring job status "finished"/),
      });
      await expect(explainer.ListJobs({ ...all, pageSize: 1000 })).rejects.toMatchObject({
        ...invalid,
        details: expect.stringMatching(/page_size must be 1-100/),
      });
    } finally {
      capture.close();
      sae.close();
      explainer.close();
    }
  });
});

describe('neuron logit tokens and nearest neurons', () => {
  const NEURON = `tiny/${NEURONS}/5`;
  const FIELDS = `fragment Weights on Neuron {
    positiveLogits { token { id text } value }
    negativeLogits { token { id text } value }
    nearest(first: 5) { totalCount edges { cosine node { id layer index } } }
    across: nearest(first: 5, acrossLayers: true) { totalCount edges { cosine node { id layer index } } }
    positiveInputTokens { token { id text } value }
    negativeInputTokens { token { id text } value }
    connections {
      upstreamPositive { weight neuron { id } } upstreamNegative { weight neuron { id } }
      downstreamPositive { weight neuron { id } } downstreamNegative { weight neuron { id } }
    }
  }`;

  it("are the capture service's NeuronWeights, under the same names and shapes as a feature's", async () => {
    const { unit } = await stack.gql(`query ($id: ID!) { unit(id: $id) { ...Weights } } ${FIELDS}`, {
      id: NEURON,
    });
    const capture = await captureClient(stack.env.LOUPE_CAPTURE_ADDR);
    try {
      const direct = await capture.NeuronWeights({ model: 'tiny', hook: NEURONS, neuron: 5, k: 5 });
      const tokens = (list: Json[]) => list.map((t) => [t.id, t.token, t.value]);
      expect(unit.positiveLogits.map((t: Json) => [t.token.id, t.token.text, t.value])).toEqual(
        tokens(direct.positiveLogits),
      );
      expect(unit.negativeLogits.map((t: Json) => [t.token.id, t.token.text, t.value])).toEqual(
        tokens(direct.negativeLogits),
      );
      expect(unit.positiveLogits).toHaveLength(10);
      const wide = await capture.NeuronWeights({ model: 'tiny', hook: NEURONS, neuron: 5, k: 10 });
      for (const side of ['positive', 'negative'] as const) {
        expect(unit[`${side}InputTokens`].map((t: Json) => [t.token.id, t.token.text, t.value])).toEqual(
          tokens(wide[`${side}InputTokens`]),
        );
      }
      // a layer-1 neuron of a 2-layer model: ten upstream each way, nothing downstream
      const linked = (list: Json[]) => list.map((c) => [`tiny/${c.hook}/${c.neuron}`, c.weight]);
      for (const key of [
        'upstreamPositive',
        'upstreamNegative',
        'downstreamPositive',
        'downstreamNegative',
      ]) {
        expect(
          unit.connections[key].map((c: Json) => [c.neuron.id, c.weight]),
          key,
        ).toEqual(linked(wide[key]));
      }
      expect(unit.connections.upstreamPositive).toHaveLength(10);
      expect(unit.connections.downstreamPositive).toEqual([]);
      const neighbours = (list: Json[]) => list.map((n) => [`tiny/${n.hook}/${n.neuron}`, n.cosine]);
      expect(unit.nearest.edges.map((e: Json) => [e.node.id, e.cosine])).toEqual(
        neighbours(direct.nearestInLayer),
      );
      expect(unit.across.edges.map((e: Json) => [e.node.id, e.cosine])).toEqual(
        neighbours(direct.nearestInModel),
      );
      // the tiny model: 2 layers of 256 neurons
      expect(unit.nearest.totalCount).toBe(255);
      expect(unit.across.totalCount).toBe(511);
      expect(unit.nearest.edges.every((e: Json) => e.node.layer === 1 && e.node.id !== NEURON)).toBe(true);
      for (const list of [unit.nearest, unit.across]) {
        const cosines = list.edges.map((e: Json) => e.cosine);
        expect([...cosines].sort((a, b) => b - a)).toEqual(cosines);
      }

      // what the capture service refuses, it names
      const refused = async (request: { hook: string; neuron: number; k?: number }) =>
        capture.NeuronWeights({ model: 'tiny', k: 0, ...request }).then(
          () => null,
          (error) => error,
        );
      expect(await refused({ hook: RESID, neuron: 0 })).toMatchObject({
        code: GrpcStatus.INVALID_ARGUMENT,
        details: expect.stringMatching(
          /neuron weights exist for blocks\.\{L\}\.mlp\.hook_post only, not "blocks\.1\.hook_resid_pre"/,
        ),
      });
      expect(await refused({ hook: NEURONS, neuron: 256 })).toMatchObject({
        code: GrpcStatus.INVALID_ARGUMENT,
        details: expect.stringMatching(
          /neuron 256 does not exist: blocks\.1\.mlp\.hook_post has neurons 0-255/,
        ),
      });
      expect(await refused({ hook: 'blocks.7.mlp.hook_post', neuron: 0 })).toMatchObject({
        details: expect.stringMatching(/blocks\.7\.mlp\.hook_post/),
      });
      expect(await refused({ hook: NEURONS, neuron: 0, k: 256 })).toMatchObject({
        code: GrpcStatus.INVALID_ARGUMENT,
        details: expect.stringMatching(/k must be 1-255/),
      });
    } finally {
      capture.close();
    }
  });

  it('page their nearest neurons with cursors, and read through the Unit interface', async () => {
    const page = async (first: number, after?: string) =>
      (
        await stack.gql(
          `query ($id: ID!, $first: Int, $after: String) { unit(id: $id) { ... on Neuron {
            nearest(first: $first, after: $after, acrossLayers: true) {
              pageInfo { hasNextPage endCursor } edges { cosine node { id } } } } } }`,
          { id: NEURON, first, after },
        )
      ).unit.nearest;
    const six = await page(6);
    const firstThree = await page(3);
    const nextThree = await page(3, firstThree.pageInfo.endCursor);
    expect([...firstThree.edges, ...nextThree.edges]).toEqual(six.edges);
    // past the first page the gateway asks the capture service for more than its loader holds
    const far = await page(2, Buffer.from('o:149').toString('base64url'));
    expect(far.edges).toHaveLength(2);
    expect(far.edges[0].cosine).toBeLessThanOrEqual(six.edges[5].cosine);

    const { unit } = await stack.gql(
      `query ($id: ID!) { unit(id: $id) { __typename positiveLogits { value } nearest(first: 2) { totalCount edges { cosine node { id } } } } }`,
      { id: NEURON },
    );
    expect(unit).toMatchObject({ __typename: 'Neuron', nearest: { totalCount: 255 } });
    expect(unit.nearest.edges).toHaveLength(2);

    const missing = await stack.post(
      '{ unit(id: "tiny/blocks.1.mlp.hook_post/999") { positiveLogits { value } } }',
    );
    expect(missing.errors[0]).toMatchObject({
      extensions: { code: 'NOT_FOUND' },
      message: expect.stringMatching(/has neurons tiny\/blocks\.\{0-1\}\.mlp\.hook_post\/\{0-255\}/),
    });
  });
});
