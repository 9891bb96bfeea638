import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@loupe/common';
import type {
  CaptureApi,
  DocumentCollection__Output,
  ExplainerApi,
  IndexDocumentsRequest,
  SaeApi,
} from '@loupe/common/grpc';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DemoContext, runDemo } from './run.js';
import {
  freshWorkspace,
  readWorkspace,
  STEP_KINDS,
  type WorkspaceState,
  withStep,
  writeWorkspace,
} from './state.js';

// The demo's shop step against a capture service that keeps its collections in a map: the steps before
// it are saved as done (their jobs are the services' business and tested end to end in first-run).
let dir: string;
let file: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-demo-run-'));
  file = path.join(dir, 'workspace.json');
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A workspace whose steps up to the scores are done, as a start before the shop step existed left it. */
async function scoredWorkspace(): Promise<void> {
  let state: WorkspaceState = { ...freshWorkspace('loupe-tiny', true), saeId: 'sae-1' };
  for (const kind of ['model', 'capture', 'train', 'records', 'scores'] as const)
    state = withStep(state, kind, {
      status: 'done',
      progress: 1,
      jobId: kind === 'model' ? null : `${kind}-job`,
    });
  state = { ...state, steps: state.steps.filter((s) => s.kind !== 'shop') };
  await writeWorkspace(file, state);
}

function fakeCapture(collections: Map<string, DocumentCollection__Output>, failWith?: string) {
  const indexed: IndexDocumentsRequest[] = [];
  const capture = {
    ModelInfo: async () => ({ name: 'loupe-tiny', nLayer: 2, dModel: 64 }),
    GetCollection: async ({ collection }: { collection: string }) => {
      const found = collections.get(collection);
      if (!found) throw Object.assign(new Error(`collection "${collection}" not found`), { code: 5 });
      return found;
    },
    IndexDocuments: async (request: IndexDocumentsRequest) => {
      indexed.push(request);
      if (failWith) throw new Error(failWith);
      const made = {
        name: request.collection ?? '',
        model: request.model ?? '',
        hook: request.hook ?? '',
        pooling: request.pooling ?? '',
        dim: 64,
        count: request.catalog?.products ?? 0,
        createdAt: '',
        updatedAt: '',
      };
      collections.set(made.name, made);
      return made;
    },
  };
  return { capture: capture as unknown as CaptureApi, indexed };
}

function context(capture: CaptureApi): DemoContext {
  const unused = new Proxy(
    {},
    {
      get: (_, method) => () => Promise.reject(new Error(`unexpected call ${String(method)}`)),
    },
  );
  return {
    file,
    model: 'loupe-tiny',
    offline: true,
    capture,
    sae: unused as SaeApi,
    explainer: unused as ExplainerApi,
    prepareModel: () => Promise.reject(new Error('the model step is done')),
    signal: new AbortController().signal,
    log: createLogger('demo-test', 'silent'),
    pollMs: 1,
  };
}

describe('demo workspace: the shop step', () => {
  it("indexes the catalog at the SAE's hook after the scores, once, and a later start leaves it", async () => {
    await scoredWorkspace();
    const collections = new Map<string, DocumentCollection__Output>();
    const first = fakeCapture(collections);
    const state = await runDemo(context(first.capture));
    expect(first.indexed).toEqual([
      {
        collection: 'shop',
        model: 'loupe-tiny',
        hook: 'blocks.1.hook_resid_pre',
        pooling: 'mean',
        catalog: { products: 3000, seed: 1 },
        replace: true,
      },
    ]);
    expect(state.status).toBe('done');
    expect(state.steps.map((s) => s.kind)).toEqual([...STEP_KINDS]);
    expect(state.steps.at(-1)).toMatchObject({ kind: 'shop', status: 'done', progress: 1, error: null });
    expect(await readWorkspace(file)).toMatchObject({ status: 'done', saeId: 'sae-1' });

    const again = fakeCapture(collections);
    expect((await runDemo(context(again.capture))).status).toBe('done');
    expect(again.indexed).toEqual([]);
  });

  it('keeps a collection that already holds the catalog at that hook, and replaces one at another hook', async () => {
    await scoredWorkspace();
    const ready = {
      name: 'shop',
      model: 'loupe-tiny',
      pooling: 'mean',
      dim: 64,
      count: 3000,
      createdAt: '',
      updatedAt: '',
    };
    const kept = fakeCapture(new Map([['shop', { ...ready, hook: 'blocks.1.hook_resid_pre' }]]));
    expect((await runDemo(context(kept.capture))).status).toBe('done');
    expect(kept.indexed).toEqual([]);

    await scoredWorkspace();
    // what `loupe demo shop index` made before it defaulted to the demo SAE's hook
    const stale = new Map([['shop', { ...ready, hook: 'blocks.1.hook_resid_post' }]]);
    const replaced = fakeCapture(stale);
    expect((await runDemo(context(replaced.capture))).status).toBe('done');
    expect(replaced.indexed.map((r) => [r.hook, r.replace])).toEqual([['blocks.1.hook_resid_pre', true]]);
    expect(stale.get('shop')?.hook).toBe('blocks.1.hook_resid_pre');
  });

  it('saves a failed index as the failed step, and the next start tries it again', async () => {
    await scoredWorkspace();
    const collections = new Map<string, DocumentCollection__Output>();
    const broken = fakeCapture(collections, 'disk full');
    const failed = await runDemo(context(broken.capture));
    expect(failed.status).toBe('failed');
    expect(failed.steps.at(-1)).toMatchObject({ kind: 'shop', status: 'failed', error: 'disk full' });
    expect((await readWorkspace(file))?.status).toBe('failed');

    const fixed = fakeCapture(collections);
    const done = await runDemo(context(fixed.capture));
    expect(done.status).toBe('done');
    expect(fixed.indexed).toHaveLength(1);
  });
});
