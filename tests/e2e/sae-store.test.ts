import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { connect, type Sql } from '@loupe/common/db';
import { CFG_FILE, nearestFeatures, SAE_SCHEMA, WEIGHTS_FILE, writeSaeLens } from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { runCli } from '../support/process.js';

// `loupe sae import` / `export` as real processes against the suite's database.
let db: TestDatabase;
let sql: Sql;
let scratch: string;
let env: Record<string, string>;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-store-e2e-'));
  db = await startTestDatabase();
  sql = connect(db.url, { schema: SAE_SCHEMA });
  env = {
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    ...databaseEnv(db),
    LOUPE_DEVICE: 'cpu',
  };
});

afterAll(async () => {
  await sql?.end();
  await db?.stop();
});

async function writeTopK(dir: string, dIn: number, dSae: number): Promise<Float32Array> {
  const rng = new Rng(9);
  const W_dec = rng.normalFloat32(dSae * dIn, 0, 1);
  await writeSaeLens(dir, {
    config: {
      architecture: 'topk',
      dIn,
      dSae,
      k: 4,
      hookName: 'blocks.1.hook_resid_pre',
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(dIn * dSae, 0, 1),
      b_enc: new Float32Array(dSae),
      W_dec,
      b_dec: new Float32Array(dIn),
    },
  });
  return W_dec;
}

describe('loupe sae import / export', () => {
  it('imports a SAELens folder into the library and the feature store, and exports it byte for byte', async () => {
    const source = path.join(scratch, 'trained');
    const W_dec = await writeTopK(source, 16, 40);
    const imported = await runCli(['sae', 'import', source, '--id', 'tiny-l1'], env);
    expect(imported.stderr).not.toMatch(/internal error/);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({
      id: 'tiny-l1',
      model: 'tiny',
      architecture: 'topk',
      dIn: 16,
      dSae: 40,
    });
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM features WHERE sae_id = 'tiny-l1'`;
    expect(n).toBe(40);
    const nearest = await nearestFeatures(sql, W_dec.subarray(7 * 16, 8 * 16), { k: 3, saeId: 'tiny-l1' });
    expect(nearest[0]).toMatchObject({ saeId: 'tiny-l1', index: 7 });
    expect(nearest[0].similarity).toBeCloseTo(1, 5);

    const out = path.join(scratch, 'exported');
    const exported = await runCli(['sae', 'export', 'tiny-l1', '--out', out], env);
    expect(exported.code).toBe(0);
    for (const file of [CFG_FILE, WEIGHTS_FILE]) {
      expect(
        (await fs.readFile(path.join(out, file))).equals(await fs.readFile(path.join(source, file))),
      ).toBe(true);
    }
  });

  it('says what is wrong with a bad folder, an unknown id, or a non-empty output folder', async () => {
    const broken = path.join(scratch, 'broken');
    await fs.mkdir(broken, { recursive: true });
    await fs.writeFile(path.join(broken, CFG_FILE), '{"architecture": "gated", "d_in": 4, "d_sae": 8}');
    const bad = await runCli(['sae', 'import', broken], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/gated/);
    const unknown = await runCli(['sae', 'export', 'nope', '--out', path.join(scratch, 'x')], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown SAE "nope"/);
    const full = await runCli(['sae', 'export', 'tiny-l1', '--out', path.join(scratch, 'trained')], env);
    expect(full.code).toBe(2);
    expect(full.stderr).toMatch(/is not empty/);
  });
});
