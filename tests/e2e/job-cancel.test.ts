import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/process.js';
import { type Json, type Stack, startStack } from '../support/stack.js';

// cancelJob over GraphQL on a running capture job (the capture worker stops at its next checkpoint),
// and reads closed by LOUPE_GATEWAY_PUBLIC_READS=false. Training-job cancel: services/sae/src/jobs.
const START = `mutation ($hooks: [String!]!) {
  startCapture(input: { dataset: "default", hooks: $hooks, maxTokens: 400000 }) { id status }
}`;
const JOB = 'query ($id: ID!) { captureJob(id: $id) { id status windowsDone error } }';
const CANCEL =
  'mutation ($id: ID!) { cancelJob(id: $id) { __typename id status error ... on CaptureJob { windowsDone } } }';
const HOOKS = ['blocks.0.hook_resid_pre', 'blocks.1.mlp.hook_post'];

describe('job cancel and closed reads', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack();
  }, 240_000);
  afterAll(() => stack?.stop());

  const job = async (id: string): Promise<Json> => (await stack.gql(JOB, { id })).captureJob;
  async function waitFor(id: string, done: (j: Json) => boolean): Promise<Json> {
    for (let i = 0; i < 1200; i++) {
      const j = await job(id);
      if (done(j)) return j;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`capture job ${id} never reached the state waited for`);
  }

  it('cancels a running capture job: cancelled, no further progress, and the same request starts a new job', async () => {
    const { startCapture: first } = await stack.gql(START, { hooks: HOOKS }, stack.auth);
    await waitFor(first.id, (j) => j.windowsDone > 0);
    const { cancelJob } = await stack.gql(CANCEL, { id: first.id }, stack.auth);
    expect(cancelJob).toMatchObject({ __typename: 'CaptureJob', id: first.id, status: 'cancelled' });
    const frozen = cancelJob.windowsDone;

    const { startCapture: second } = await stack.gql(START, { hooks: HOOKS }, stack.auth);
    expect(second.id).not.toBe(first.id);
    // one capture worker runs jobs one after another: once the new job progresses, the old run is over
    await waitFor(second.id, (j) => j.windowsDone > 0);
    expect(await job(first.id)).toMatchObject({
      status: 'cancelled',
      windowsDone: frozen,
      error: 'cancelled on request',
    });
    expect((await stack.gql(CANCEL, { id: second.id }, stack.auth)).cancelJob.status).toBe('cancelled');
    // cancelling again returns the job as it is
    expect((await stack.gql(CANCEL, { id: first.id }, stack.auth)).cancelJob).toMatchObject({
      status: 'cancelled',
      windowsDone: frozen,
    });
  }, 180_000);

  it('needs an API key, and names unknown ids', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    expect((await stack.post(CANCEL, { id })).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const unknown = await stack.post(CANCEL, { id }, stack.auth);
    expect(unknown.errors[0]).toMatchObject({
      extensions: { code: 'NOT_FOUND' },
      message: expect.stringMatching(/unknown job/),
    });
    const bad = await stack.post(CANCEL, { id: 'nope' }, stack.auth);
    expect(bad.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('with LOUPE_GATEWAY_PUBLIC_READS=false every query needs an API key', async () => {
    const query = '{ models { totalCount } }';
    expect((await stack.post(query)).data.models.totalCount).toBeGreaterThan(0); // the default: public reads
    const closed = await stack.startGateway({
      LOUPE_GATEWAY_PUBLIC_READS: 'false',
      LOUPE_GATEWAY_PORT: String(await freePort()),
    });
    const refused = await stack.post(query, {}, {}, closed);
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors[0]).toMatchObject({
      extensions: { code: 'UNAUTHENTICATED' },
      message: expect.stringMatching(/needs an API key/),
    });
    const wrong = await stack.post(query, {}, { authorization: 'Bearer not-a-key' }, closed);
    expect(wrong.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const allowed = await stack.post(query, {}, stack.auth, closed);
    expect(allowed.errors).toBeUndefined();
    expect(allowed.data.models.totalCount).toBeGreaterThan(0);
  }, 120_000);
});
