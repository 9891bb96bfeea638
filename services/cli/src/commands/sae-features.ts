import { existsSync } from 'node:fs';
import path from 'node:path';
import { type LoupeConfig, loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { openDatabase, type Sql } from '@loupe/common/db';
import { MANIFEST_FILE, readManifest, resolveModelDir } from '@loupe/model';
import { resolveActivations } from '@loupe/records';
import { computeFeatureRecords, findSae, SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '@loupe/sae';
import { type Progress, progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

interface FeaturesOptions {
  activations: string;
  model?: string;
  logits: boolean;
  rows: string;
}

const LABELS = {
  encode: 'encoding windows',
  sample: 'encoding the sample',
  write: 'writing records',
  logits: 'logit tokens',
} as const;

/**
 * `loupe sae features <sae-id> --activations <capture-job-id|capture-job-dir>`: feature statistics and records over a
 * capture job's shards for the SAE's hook, and logit tokens through the model's unembedding.
 */
export async function features(saeId: string, options: FeaturesOptions): Promise<void> {
  const config = loadConfig();
  const rowsPerBatch = Number(options.rows);
  if (!Number.isSafeInteger(rowsPerBatch) || rowsPerBatch < 1)
    throw new UserInputError(`--rows must be a whole number ≥ 1, got ${options.rows}`);
  const db = await openDatabase(config, {
    schema: SAE_SCHEMA,
    migrationsDir: SAE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  let bar: Progress | undefined;
  try {
    const logits = options.logits ? await logitModel(db.sql, config, saeId, options.model) : undefined;
    let phase = '';
    const activations = resolveActivations(config.dataDir, options.activations);
    const summary = await computeFeatureRecords(db.sql, config.dataDir, saeId, activations, {
      device: config.device,
      intraOpThreads: config.intraOpThreads,
      modelDir: logits?.modelDir,
      rowsPerBatch,
      onProgress: (p, done, total) => {
        if (p !== phase) {
          bar?.stop();
          bar = progressBar(LABELS[p]);
          phase = p;
        }
        bar?.update(done, total);
      },
    });
    bar?.stop();
    await printJson({ ...summary, ...(logits?.skipped ? { logitTokensSkipped: logits.skipped } : {}) });
  } finally {
    bar?.stop();
    await db.close();
  }
}

/**
 * The model folder for logit tokens: --model when given (a mismatch is then an error), else the
 * library model the SAE names when it is there and its width matches; otherwise why they are skipped.
 */
async function logitModel(
  sql: Sql,
  config: LoupeConfig,
  saeId: string,
  explicit?: string,
): Promise<{ modelDir?: string; skipped?: string }> {
  const sae = await findSae(sql, saeId);
  if (explicit) {
    explicit = resolveModelDir(modelsDir(config), explicit);
    const manifest = await readManifest(explicit);
    if (manifest.dims.dModel !== sae.dIn) {
      throw new UserInputError(
        `--model ${explicit} has d_model ${manifest.dims.dModel}; logit tokens need the SAE's d_in (${sae.dIn}) to equal it (a residual-stream hook), or pass --no-logits`,
      );
    }
    return { modelDir: explicit };
  }
  const modelDir = path.join(modelsDir(config), sae.model);
  if (!existsSync(path.join(modelDir, MANIFEST_FILE)))
    return { skipped: `no converted model at ${modelDir}; pass --model <model-dir>` };
  const manifest = await readManifest(modelDir);
  if (manifest.dims.dModel !== sae.dIn)
    return {
      skipped: `d_in ${sae.dIn} is not the residual stream width ${manifest.dims.dModel} of ${sae.model}`,
    };
  return { modelDir };
}
