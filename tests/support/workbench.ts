import fs from 'node:fs/promises';
import path from 'node:path';
import { Rng, writeSafetensors } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import {
  computeFeatureRecords,
  importSae,
  SAE_MIGRATIONS_DIR,
  SAE_SCHEMA,
  type Sae,
  writeSaeLens,
} from '@loupe/sae';
import type { Browser } from 'playwright-core';
import { launchChromium, type RunningWeb, startWeb } from './browser.js';
import { type CaptureApi, captureClient, floats } from './grpc.js';
import { freePort, REPO_ROOT, type RunningProcess, runCli, startProcess } from './process.js';
import { serveTiny } from './served-tiny.js';

/** The tiny fixture's d_model, and the width of the test SAE. */
export const D = 64;
export const D_SAE = 96;
/** A random TopK SAE on a resid_pre hook (steerable), with feature records over TEXTS. */
export const SAE_ID = 'tiny-res1';
export const SAE_HOOK = 'blocks.1.hook_resid_pre';
export const NEURON_HOOK = 'blocks.1.mlp.hook_post';
export const SCREENSHOTS = path.join(REPO_ROOT, 'docs/screenshots');
const JOB = '7d3c1e52-95a4-4e7a-8a7e-2b6f0c1d9e33';
export const TEXTS = [
  'The quick brown fox jumps over the lazy dog, and the dog sleeps on.',
  'Fellow citizens of the Senate and House of Representatives, I come before you.',
  'Once upon a time there was a small town by the sea where everyone knew each other.',
];

// biome-ignore lint/suspicious/noExplicitAny: answers are compared field by field with the pages
export type Json = any;

/** The services behind the gateway, as processes, with data in them (no web app, no browser). */
export interface Services {
  env: Record<string, string>;
  gatewayUrl: string;
  /** a GraphQL answer's data; throws with the errors when there are any */
  gql(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<Json>;
  /** what the gateway process wrote to stderr so far */
  gatewayLog(): string;
  stop(): Promise<void>;
}

export interface Workbench extends Services {
  web: RunningWeb;
  browser: Browser;
}

function randomSae(seed: number): Sae {
  const rng = new Rng(seed);
  return {
    config: {
      architecture: 'topk',
      dIn: D,
      dSae: D_SAE,
      k: 8,
      hookName: SAE_HOOK,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(D * D_SAE, 0, 0.3),
      b_enc: rng.normalFloat32(D_SAE, 0, 0.1),
      W_dec: rng.normalFloat32(D_SAE * D, 0, 0.2),
      b_dec: rng.normalFloat32(D, 0, 0.05),
    },
  };
}

/** A capture-job-shaped folder with the texts' activations at SAE_HOOK, for feature records. */
async function writeShards(captureApi: CaptureApi, dataDir: string): Promise<string> {
  const runs = [];
  for (const text of TEXTS) {
    const out = await captureApi.Activations({ text, hooks: [SAE_HOOK] });
    runs.push({ ids: out.ids, x: floats(out.activations[SAE_HOOK]) });
  }
  const x = Float32Array.from(runs.flatMap((r) => Array.from(r.x)));
  const offsets = [0];
  for (const r of runs) offsets.push(offsets.at(-1)! + r.ids.length);
  const jobDir = path.join(dataDir, 'capture', JOB);
  const shard = path.join(jobDir, 'shards', SAE_HOOK, '000000.safetensors');
  await fs.mkdir(path.dirname(shard), { recursive: true });
  await writeSafetensors(shard, [
    { name: 'activations', dtype: 'F32', shape: [x.length / D, D], data: x },
    {
      name: 'token_ids',
      dtype: 'I32',
      shape: [x.length / D],
      data: Int32Array.from(runs.flatMap((r) => r.ids)),
    },
    { name: 'window_index', dtype: 'I32', shape: [runs.length], data: Int32Array.from(runs.keys()) },
    { name: 'window_offsets', dtype: 'I32', shape: [offsets.length], data: Int32Array.from(offsets) },
  ]);
  return jobDir;
}

async function waitForGateway(url: string, gateway: RunningProcess): Promise<void> {
  for (let i = 0; ; i++) {
    const up = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{ __typename }"}',
    }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    if (i > 240 || gateway.child.exitCode !== null)
      throw new Error(`gateway did not start:\n${gateway.stderr()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The whole stack as real processes: the services (startServices), `next start`, and Debian's Chromium
 * to drive it.
 */
export async function startWorkbench(): Promise<Workbench> {
  const services = await startServices();
  let web: RunningWeb | undefined;
  try {
    web = await startWeb(await freePort(), services.env);
    const browser = await launchChromium();
    await fs.mkdir(SCREENSHOTS, { recursive: true });
    const running = web;
    return {
      ...services,
      web: running,
      browser,
      async stop() {
        await browser.close();
        await running.stop();
        await services.stop();
      },
    };
  } catch (error) {
    await web?.stop();
    await services.stop();
    throw error;
  }
}

/**
 * The suite's database (serveTiny), capture service (with a captured dataset for neuron records), SAE
 * service (with a random SAE whose feature records are computed), explainer (its statistical baseline: no
 * LLM) and the gateway, each a real process.
 */
export async function startServices(): Promise<Services> {
  const { scratch, dataDir, servedModel, db: database, dbEnv } = await serveTiny('loupe-workbench-');
  const captureAddress = `127.0.0.1:${await freePort()}`;
  const gatewayPort = await freePort();
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: captureAddress,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...dbEnv,
    // the explainer's built-in statistical baseline explains and simulates (no LLM server)
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
  };
  const db = await openDatabase(
    { databaseUrl: database.url, dataDir, embeddedPgPort: 0 },
    { schema: SAE_SCHEMA, migrationsDir: SAE_MIGRATIONS_DIR, applicationName: 'workbench-test' },
  );
  const processes: RunningProcess[] = [];
  let captureApi: CaptureApi | undefined;
  const stop = async () => {
    captureApi?.close();
    for (const p of processes.reverse()) await p.stop();
    await db.close();
    await database.stop();
  };
  try {
    await writeSaeLens(path.join(scratch, 'saelens', SAE_ID), randomSae(11));
    await importSae(db.sql, dataDir, path.join(scratch, 'saelens', SAE_ID), { id: SAE_ID });
    const captured = await runCli(
      ['capture', '--model', servedModel, '--hooks', NEURON_HOOK, '--max-tokens', '3000'],
      env,
    );
    if (captured.code !== 0) throw new Error(`loupe capture failed:\n${captured.stderr}`);
    processes.push(startProcess('services/capture/dist/main.js', env));
    processes.push(startProcess('services/sae/dist/main.js', env));
    processes.push(startProcess('services/explainer/dist/main.js', env));
    captureApi = await captureClient(captureAddress);
    const jobDir = await writeShards(captureApi, dataDir);
    await computeFeatureRecords(db.sql, dataDir, SAE_ID, jobDir, {
      device: 'cpu',
      intraOpThreads: 1,
      modelDir: servedModel,
    });
    const gateway = startProcess('services/gateway/dist/bin.js', env);
    processes.push(gateway);
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;
    await waitForGateway(gatewayUrl, gateway);
    const gql = async (query: string, variables: Record<string, unknown> = {}, headers = {}) => {
      const response = await fetch(gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as { data?: Json; errors?: unknown[] };
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    };
    return { env, gatewayUrl, gql, gatewayLog: () => gateway.stderr(), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The SAE's feature that fires on the most tokens, so its page has records. */
export async function busiestFeature(workbench: Workbench): Promise<number> {
  const ids = Array.from({ length: D_SAE }, (_, f) => `tiny/${SAE_ID}/${f}`);
  const { units } = await workbench.gql(
    'query ($ids: [ID!]!) { units(ids: $ids) { index stats { fractionNonzero } } }',
    {
      ids,
    },
  );
  return units.reduce((best: Json, u: Json) =>
    u.stats.fractionNonzero > best.stats.fractionNonzero ? u : best,
  ).index;
}
