import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type HfServer, startHfServer, withTestDatabase } from '@loupe/common/testing';
import { hubCacheDir, type ModelManifest } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  referenceSaeLensForward,
  type SaeLensVariant,
  saeLensVariants,
  VARIANT_D_IN,
  VARIANT_D_SAE,
  writeSaeLensVariant,
} from '../../testing/saelens-variants.js';
import { decode, encode, inputScales } from '../format/sae-forward.js';
import { CFG_FILE, readSaeLens, SPARSITY_FILE, WEIGHTS_FILE } from '../format/saelens.js';
import { SaeEncoder } from '../infer/sae-encoder.js';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '../store/migrations.js';
import { findSae } from '../store/sae-store.js';
import { checkPulledCfg, importPulledSae } from './import-pulled-sae.js';
import { downloadSaeFiles } from './sae-files.js';

// `loupe sae pull` below the CLI: every published cfg.json variant served by a stand-in hub in its URL
// layout (one repository, one folder per SAE, LFS redirects), downloaded with the model pull's
// downloader (one transfer cut mid-file, one resumed from an earlier run's partial file), imported,
// and the library copy run against an independent float64 reading of SAELens' semantics.

const REPO = 'loupe-test/saelens-variants';
const ROOT_REPO = 'loupe-test/one-sae';
/** float32 weights, latents and outputs over sums of 8-16 O(1) terms, as in saelens-variants.test.ts */
const TOL = 1e-5;
/** ONNX Runtime sums in float32 in its own order: a few ulps more than the float64-accumulating TS */
const ONNX_TOL = 1e-4;
const ROWS = 6;

const db = withTestDatabase({ beforeAll, afterAll }, { schema: SAE_SCHEMA, migrations: SAE_MIGRATIONS_DIR });
let scratch: string;
let hub: HfServer;
const variants = saeLensVariants();

/** A converted GPT-2 as its manifest describes it: 2 layers of width VARIANT_D_IN. */
const model = {
  manifest: {
    format: 'loupe-model',
    formatVersion: 1,
    name: 'gpt2',
    dims: { nLayer: 2, dModel: VARIANT_D_IN, dMlp: 4 * VARIANT_D_IN, nHead: 2, nCtx: 64, nVocab: 50257 },
    hooks: [],
    source: { repo: 'openai-community/gpt2' },
  } as unknown as ModelManifest,
  dir: '/models/gpt2',
};

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-pull-'));
  const files: Record<string, string> = {};
  for (const variant of variants) {
    const written = await writeSaeLensVariant(path.join(scratch, 'fixtures', variant.name), variant);
    for (const [name, file] of Object.entries(written)) files[`${variant.name}/${name}`] = file;
  }
  const rootFiles = await writeSaeLensVariant(path.join(scratch, 'fixtures', 'root'), variants[0]);
  // a folder whose sparsity file is not SAELens'
  const badSparsity = await writeSaeLensVariant(path.join(scratch, 'fixtures', 'bad-sparsity'), {
    ...variants[0],
    sparsity: { file: SPARSITY_FILE, values: new Float32Array(3) },
  });
  for (const [name, file] of Object.entries(badSparsity)) files[`bad-sparsity/${name}`] = file;
  // trained on another model, and on a hook the test model lacks
  const medium = {
    ...variants[0],
    cfg: {
      ...variants[0].cfg,
      metadata: { model_name: 'gpt2-medium', hook_name: 'blocks.1.hook_resid_pre' },
    },
  };
  for (const [name, file] of Object.entries(
    await writeSaeLensVariant(path.join(scratch, 'fixtures', 'medium'), medium),
  ))
    files[`medium/${name}`] = file;
  const deep = {
    ...variants[0],
    cfg: { ...variants[0].cfg, metadata: { model_name: 'gpt2', hook_name: 'blocks.7.hook_resid_pre' } },
  };
  for (const [name, file] of Object.entries(
    await writeSaeLensVariant(path.join(scratch, 'fixtures', 'deep'), deep),
  ))
    files[`deep/${name}`] = file;
  const mlp = {
    ...variants[0],
    cfg: { ...variants[0].cfg, metadata: { model_name: 'gpt2', hook_name: 'blocks.1.mlp.hook_post' } },
  };
  for (const [name, file] of Object.entries(
    await writeSaeLensVariant(path.join(scratch, 'fixtures', 'mlp'), mlp),
  ))
    files[`mlp/${name}`] = file;

  hub = await startHfServer({
    repos: { [REPO]: { files }, [ROOT_REPO]: { files: rootFiles } },
    lfsRedirect: true,
    failOnce: { file: 'bloom-pre6/sae_weights.safetensors', afterBytes: 700 },
  });
}, 60_000);

afterAll(async () => {
  await hub?.close();
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

function pull(subfolder: string | undefined, dataDir: string, repo = REPO) {
  return downloadSaeFiles({
    endpoint: hub.url,
    repo,
    revision: 'main',
    subfolder,
    cacheDir: hubCacheDir(dataDir, repo, 'main'),
    retryBaseMs: 1,
  });
}

function inputs(): Float32Array {
  const x = new Float32Array(ROWS * VARIANT_D_IN);
  // a fixed, hand-picked spread: offsets, sign changes and rows of different norms
  for (let r = 0; r < ROWS; r++)
    for (let j = 0; j < VARIANT_D_IN; j++)
      x[r * VARIANT_D_IN + j] = Math.sin(1.7 * r + 0.9 * j) * (1 + r) + 0.3;
  return x;
}

function worstError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  return worst;
}

async function expectMatchesReference(variant: SaeLensVariant, libraryDir: string): Promise<void> {
  // The library holds a v6 folder with everything folded in: it reads without any outside factor.
  const sae = await readSaeLens(libraryDir);
  const x = inputs();
  const ref = referenceSaeLensForward(variant, x, ROWS);
  expect(ref.margin, `${variant.name}: decision margin`).toBeGreaterThan(1e-4);
  const acts = encode(sae, x, ROWS);
  expect(worstError(acts, ref.acts), `${variant.name}: latents`).toBeLessThan(TOL);
  const recon = decode(sae, acts, ROWS, inputScales(sae, x, ROWS));
  expect(worstError(recon, ref.recon), `${variant.name}: reconstruction`).toBeLessThan(TOL);
  // and the ONNX encoder that feature records use
  const encoder = await SaeEncoder.open(sae, { device: 'cpu', intraOpThreads: 1 });
  try {
    expect(worstError(await encoder.encode(x, ROWS), ref.acts), `${variant.name}: ONNX latents`).toBeLessThan(
      ONNX_TOL,
    );
  } finally {
    await encoder.close();
  }
}

describe('sae pull from a hub', () => {
  it('pulls and imports every cfg.json variant with SAELens semantics', async () => {
    const dataDir = path.join(scratch, 'data-all');
    for (const variant of variants) {
      const pulled = await pull(variant.name, dataDir);
      expect(pulled.sparsityFile).toBe(variant.sparsity?.file);
      const { row, sparsity } = await importPulledSae(db.sql, dataDir, {
        folder: pulled.dir,
        sparsityFile: pulled.sparsityFile,
        source: { repo: REPO, revision: 'main', commit: pulled.commit, subfolder: variant.name },
        id: `pulled-${variant.name}`,
        model,
        normScalingFactor: variant.normScalingFactor,
        centerWritingWeights: variant.centerWritingWeights,
      });
      expect(sparsity).toBe(variant.sparsity !== undefined);
      expect(row).toMatchObject({ model: 'gpt2', dIn: VARIANT_D_IN, dSae: VARIANT_D_SAE });
      expect(row.hook).toMatch(/^blocks\.1\.hook_(resid_pre|resid_post|mlp_out)$/);
      await expectMatchesReference(variant, row.weightsPath);

      // the feature store holds the decoder directions the library SAE decodes with
      const features = await db.sql<{ index: number; decoder: string }[]>`
        SELECT index, decoder::text AS decoder FROM features WHERE sae_id = ${row.id} ORDER BY index`;
      expect(features).toHaveLength(VARIANT_D_SAE);
      const { W_dec } = (await readSaeLens(row.weightsPath)).weights;
      const third = JSON.parse(features[3].decoder) as number[];
      expect(worstError(third, W_dec.subarray(3 * VARIANT_D_IN, 4 * VARIANT_D_IN))).toBeLessThan(1e-6);

      // provenance and the original cfg ride along; the sparsity file is kept under SAELens' name
      const cfg = JSON.parse(await fs.readFile(path.join(row.weightsPath, CFG_FILE), 'utf8'));
      expect(cfg.loupe.pulled_from).toMatchObject({ repo: REPO, revision: 'main', path: variant.name });
      expect(cfg.loupe.original_cfg).toEqual(variant.cfg);
      const kept = await fs.readdir(row.weightsPath);
      expect(kept.includes(SPARSITY_FILE)).toBe(variant.sparsity !== undefined);
    }
  }, 120_000);

  it('resumes a transfer cut mid-file, and a partial file left by an earlier run', async () => {
    // the cut: the first GET of bloom-pre6's weights dropped after 700 bytes, then resumed with Range
    const bloomWeights = await fs.readFile(path.join(scratch, 'fixtures', 'bloom-pre6', WEIGHTS_FILE));
    const cdnPath = `/cdn/${createHash('sha256').update(bloomWeights).digest('hex')}`;
    const gets = hub.requests.filter((r) => r.path === cdnPath && r.method === 'GET');
    expect(gets[0].range).toBeUndefined();
    expect(gets.slice(1).some((r) => /^bytes=[1-9]\d*-$/.test(r.range ?? ''))).toBe(true);
    // and what came down is the file, byte for byte
    const cached = path.join(
      hubCacheDir(path.join(scratch, 'data-all'), REPO, 'main'),
      'bloom-pre6',
      WEIGHTS_FILE,
    );
    expect((await fs.readFile(cached)).equals(bloomWeights)).toBe(true);

    // an earlier run that died after 1,000 bytes of v6-topk's weights
    const dataDir = path.join(scratch, 'data-resume');
    const cache = hubCacheDir(dataDir, REPO, 'main');
    const original = await fs.readFile(path.join(scratch, 'fixtures', 'v6-topk', WEIGHTS_FILE));
    await fs.mkdir(path.join(cache, 'v6-topk'), { recursive: true });
    await fs.writeFile(path.join(cache, 'v6-topk', `${WEIGHTS_FILE}.incomplete`), original.subarray(0, 1000));
    const before = hub.requests.length;
    const pulled = await pull('v6-topk', dataDir);
    // (the Range goes to resolve/ and, after its redirect, to the CDN: the bytes come from the latter)
    const resumed = hub.requests.slice(before).filter((r) => r.path.startsWith('/cdn/'));
    expect(resumed.map((r) => r.range)).toEqual(['bytes=1000-']);
    expect((await fs.readFile(path.join(pulled.dir, WEIGHTS_FILE))).equals(original)).toBe(true);

    // pulled again, nothing is transferred: the files are there and their hashes check out
    const again = hub.requests.length;
    await pull('v6-topk', dataDir);
    expect(hub.requests.slice(again).filter((r) => r.method === 'GET')).toHaveLength(0);
  });

  it('takes an SAE at the root of its repository, with the default id', async () => {
    const dataDir = path.join(scratch, 'data-root');
    const pulled = await pull(undefined, dataDir, ROOT_REPO);
    const { row } = await importPulledSae(db.sql, dataDir, {
      folder: pulled.dir,
      source: { repo: ROOT_REPO, revision: 'main', commit: pulled.commit, subfolder: '' },
      model,
    });
    expect(row.id).toMatch(/^gpt2:blocks\.1\.hook_resid_pre:[0-9a-f]{12}$/);
    expect((await findSae(db.sql, row.id)).model).toBe('gpt2');
  });

  it('files an SAE checked against no model under the Loupe name of the model its cfg names', async () => {
    const dataDir = path.join(scratch, 'data-unchecked');
    const pulled = await pull('bloom-pre6', dataDir);
    const { row } = await importPulledSae(db.sql, dataDir, {
      folder: pulled.dir,
      source: { repo: REPO, revision: 'main', subfolder: 'bloom-pre6' },
      id: 'unchecked-bloom',
    });
    // cfg.json says TransformerLens' gpt2-small
    expect(row.model).toBe('gpt2');
    expect(await fs.readdir(path.join(dataDir, 'hub'))).not.toContainEqual(
      expect.stringMatching(/^\.import-/),
    );
  });

  it('says what is wrong with a bad folder, a bad sparsity file, or the wrong model', async () => {
    const dataDir = path.join(scratch, 'data-bad');
    await expect(pull('no-such-sae', dataDir)).rejects.toThrow(
      /file no-such-sae\/cfg\.json not found in repository loupe-test\/saelens-variants.*check --path no-such-sae/,
    );
    await expect(pull('../escape', dataDir)).rejects.toThrow(
      /--path "\.\.\/escape" is not a folder of the repository/,
    );
    await expect(pull(undefined, dataDir)).rejects.toThrow(/name one with --path <folder>/);

    const importFrom = async (name: string) => {
      const pulled = await pull(name, dataDir);
      return importPulledSae(db.sql, dataDir, {
        folder: pulled.dir,
        sparsityFile: pulled.sparsityFile,
        source: { repo: REPO, revision: 'main', subfolder: name },
        id: `bad-${name}`,
        model,
      });
    };
    await expect(importFrom('bad-sparsity')).rejects.toThrow(
      /expected a tensor "sparsity" of d_sae = 16 values, found \[3\]/,
    );
    await expect(importFrom('medium')).rejects.toThrow(
      /the SAE was trained on model "gpt2-medium" \(cfg\.json model_name\), not model "gpt2"/,
    );
    await expect(importFrom('deep')).rejects.toThrow(
      /the SAE reads hook "blocks\.7\.hook_resid_pre", which model "gpt2" .* does not have/,
    );
    await expect(importFrom('mlp')).rejects.toThrow(
      /the SAE reads blocks\.1\.mlp\.hook_post with d_in 8, but model "gpt2" .* is 32 wide there/,
    );
    await expect(importFrom('expected-average-pre6')).rejects.toThrow(
      /normalize_activations "expected_average_only_in" needs/,
    );
    // checked as soon as cfg.json is here, the mismatch stops the pull before the weights are asked for
    const before = hub.requests.length;
    await expect(
      downloadSaeFiles({
        endpoint: hub.url,
        repo: REPO,
        revision: 'main',
        subfolder: 'deep',
        cacheDir: hubCacheDir(path.join(scratch, 'data-early'), REPO, 'main'),
        checkCfg: (cfgFile) => checkPulledCfg(cfgFile, { model }),
      }),
    ).rejects.toThrow(/the SAE reads hook "blocks\.7\.hook_resid_pre"/);
    const asked = hub.requests.slice(before).map((r) => r.path);
    expect(asked.some((p) => p.endsWith('deep/cfg.json'))).toBe(true);
    expect(asked.filter((p) => !p.endsWith('deep/cfg.json'))).toEqual([]);
    // a cfg.json without d_in is checked for what it says; its width waits for the weights
    const bare = await fs.readFile(path.join(scratch, 'fixtures', 'bare-pre6', CFG_FILE), 'utf8');
    expect(JSON.parse(bare).d_in).toBeUndefined();
    await checkPulledCfg(path.join(scratch, 'fixtures', 'bare-pre6', CFG_FILE), { model });

    // nothing was half-imported
    const ids = await db.sql<{ id: string }[]>`SELECT id FROM saes WHERE id LIKE 'bad-%'`;
    expect(ids).toEqual([]);
  });
});
