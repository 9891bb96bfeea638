import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, type Sql } from '@loupe/common/db';
import { type HfServer, startHfServer } from '@loupe/common/testing';
import { encode, readSaeLens, SAE_SCHEMA } from '@loupe/sae';
import { referenceSaeLensForward, saeLensVariants, writeSaeLensVariant } from '@loupe/sae/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { convertedFixture } from '../support/model.js';
import { runCli } from '../support/process.js';

// `loupe sae pull` as a real process: a stand-in hub serving published cfg.json layouts at the tiny
// model's width, one transfer cut mid-file, checked against the served model (LOUPE_MODEL).

const REPO = 'loupe-test/tiny-saes';
const D_IN = FIXTURES.tiny.nEmbd;
const D_SAE = 96;

let db: TestDatabase;
let sql: Sql;
let scratch: string;
let hub: HfServer;
let env: Record<string, string>;
const variants = saeLensVariants({ dIn: D_IN, dSae: D_SAE });
const named = (name: string) => variants.find((v) => v.name === name)!;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-pull-e2e-'));
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  db = await startTestDatabase();
  sql = connect(db.url, { schema: SAE_SCHEMA });
  const files: Record<string, string> = {};
  const serve = async (folder: string, variant: (typeof variants)[number]) => {
    const written = await writeSaeLensVariant(path.join(scratch, 'fixtures', folder), variant);
    for (const [name, file] of Object.entries(written)) files[`${folder}/${name}`] = file;
  };
  // Bloom's layout, trained (says its cfg) on the model the tests serve
  await serve('blocks.1.hook_resid_pre', {
    ...named('bloom-pre6'),
    cfg: { ...named('bloom-pre6').cfg, model_name: 'tiny' },
  });
  await serve('topk', named('openai-topk-pre6'));
  await serve('average', {
    ...named('expected-average-pre6'),
    cfg: { ...named('expected-average-pre6').cfg, model_name: 'tiny' },
  });
  // other weights: the stand-in CDN serves by content hash, and the cut must hit the first folder
  await serve('medium', {
    ...named('v6-standard'),
    cfg: { ...named('bloom-pre6').cfg, model_name: 'gpt2-medium' },
  });
  hub = await startHfServer({
    repos: { [REPO]: { files } },
    lfsRedirect: true,
    failOnce: { file: 'blocks.1.hook_resid_pre/sae_weights.safetensors', afterBytes: 5_000 },
  });
  env = {
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    LOUPE_MODEL: modelDir,
    HF_ENDPOINT: hub.url,
    LOUPE_DEVICE: 'cpu',
    ...databaseEnv(db),
  };
}, 180_000);

afterAll(async () => {
  await hub?.close();
  await sql?.end();
  await db?.stop();
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

describe('loupe sae pull', () => {
  it('downloads through an interrupted transfer and imports into the library and the feature store', async () => {
    const { code, stdout, stderr } = await runCli(
      ['sae', 'pull', REPO, '--path', 'blocks.1.hook_resid_pre', '--id', 'bloom-l1'],
      env,
    );
    expect(stderr).not.toMatch(/internal error/);
    expect(code).toBe(0);
    expect(stderr).toMatch(/downloading/);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({
      id: 'bloom-l1',
      model: 'tiny',
      hook: 'blocks.1.hook_resid_pre',
      architecture: 'standard',
      dIn: D_IN,
      dSae: D_SAE,
      sparsity: true,
      source: { repo: REPO, revision: 'main', path: 'blocks.1.hook_resid_pre' },
      modelCheck: 'matches tiny',
    });
    expect(result.source.commit).toMatch(/^[0-9a-f]{40}$/);
    const resumed = hub.requests.filter(
      (r) => r.path.startsWith('/cdn/') && /^bytes=[1-9]\d*-$/.test(r.range ?? ''),
    );
    expect(resumed.length, JSON.stringify(hub.requests)).toBeGreaterThanOrEqual(1);
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM features WHERE sae_id = 'bloom-l1'`;
    expect(n).toBe(D_SAE);

    // the library copy computes what SAELens computes (float64 reference; tolerance as in the unit tests)
    const sae = await readSaeLens(result.path);
    const x = Float32Array.from({ length: 3 * D_IN }, (_, i) => Math.cos(0.37 * i) * 3);
    const ref = referenceSaeLensForward(named('bloom-pre6'), x, 3);
    expect(ref.margin).toBeGreaterThan(1e-4);
    const acts = encode(sae, x, 3);
    for (let i = 0; i < acts.length; i++)
      expect(Math.abs(acts[i] - ref.acts[i])).toBeLessThan(1e-5 * (1 + Math.abs(ref.acts[i])));
  });

  it('pulls a pre-6 TopK SAE without model_name, and folds a given norm scaling factor', async () => {
    const topk = await runCli(['sae', 'pull', REPO, '--path', 'topk'], env);
    expect(topk.stderr).not.toMatch(/internal error/);
    expect(topk.code).toBe(0);
    expect(JSON.parse(topk.stdout)).toMatchObject({
      model: 'tiny',
      architecture: 'topk',
      hook: 'blocks.1.hook_resid_post',
      sparsity: true,
    });

    // a release that says outside its folder that the SAE read centred activations
    const centred = await runCli(
      ['sae', 'pull', REPO, '--path', 'topk', '--id', 'topk-centred', '--center-writing-weights'],
      env,
    );
    expect(centred.code).toBe(0);
    const centredCfg = JSON.parse(
      await fs.readFile(path.join(JSON.parse(centred.stdout).path, 'cfg.json'), 'utf8'),
    );
    expect(centredCfg.loupe.center_writing_weights).toBe(true);

    const refused = await runCli(['sae', 'pull', REPO, '--path', 'average'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /normalize_activations "expected_average_only_in" needs the dataset's norm scaling factor/,
    );
    const folded = await runCli(
      ['sae', 'pull', REPO, '--path', 'average', '--norm-scaling-factor', '2.5'],
      env,
    );
    expect(folded.code).toBe(0);
    const cfg = JSON.parse(await fs.readFile(path.join(JSON.parse(folded.stdout).path, 'cfg.json'), 'utf8'));
    expect(cfg).toMatchObject({
      normalize_activations: 'none',
      loupe: { activation_scale: 2.5, norm_scaling_factor: 2.5 },
    });
  });

  it('says clearly when the SAE does not fit the model, or is not there', async () => {
    const before = hub.requests.length;
    const medium = await runCli(['sae', 'pull', REPO, '--path', 'medium'], env);
    // refused from cfg.json alone: the weights were never asked for
    expect(hub.requests.slice(before).filter((r) => r.path.includes('sae_weights'))).toEqual([]);
    expect(medium.code).toBe(2);
    expect(medium.stderr).toMatch(
      /trained on model "gpt2-medium" \(cfg\.json model_name\), not model "tiny"/,
    );
    const missing = await runCli(['sae', 'pull', REPO, '--path', 'nowhere'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/file nowhere\/cfg\.json not found .*check --path nowhere/);
    const noModel = await runCli(
      ['sae', 'pull', REPO, '--path', 'topk', '--model', path.join(scratch, 'nope')],
      env,
    );
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/no model/);
  });
});
