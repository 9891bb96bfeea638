import os from 'node:os';
import { type LoupeConfig, LoupeError, loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import { hubCacheDir, type ModelManifest, readManifest, resolveModelDir } from '@loupe/model';
import {
  checkPulledCfg,
  downloadSaeFiles,
  importPulledSae,
  SAE_MIGRATIONS_DIR,
  SAE_SCHEMA,
} from '@loupe/sae';
import { progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

interface PullOptions {
  path?: string;
  revision: string;
  id?: string;
  model?: string;
  normScalingFactor?: string;
  centerWritingWeights?: boolean;
}

/**
 * `loupe sae pull <repo-id> [--path <folder>]`: downloads a SAELens SAE from the hub ($HF_ENDPOINT)
 * with the model pull's downloader and imports it into the library and the feature store.
 */
export async function pull(repo: string, options: PullOptions): Promise<void> {
  const config = loadConfig();
  const normScalingFactor = positiveOrUndefined(options.normScalingFactor, '--norm-scaling-factor');
  // Before any download: a --model that does not exist is a typo worth hearing about at once.
  const model = await checkModel(config, options.model);
  const cacheDir = hubCacheDir(config.dataDir, repo, options.revision);
  const bar = progressBar('downloading');
  const checks = {
    model: model.checked,
    normScalingFactor,
    centerWritingWeights: options.centerWritingWeights,
  };
  const pulled = await downloadSaeFiles({
    endpoint: config.hfEndpoint,
    repo,
    revision: options.revision,
    subfolder: options.path,
    cacheDir,
    token: config.hfToken,
    checkCfg: (cfgFile) => checkPulledCfg(cfgFile, checks),
    onProgress: (p) => bar.update(p.receivedBytes, p.totalBytes ?? p.receivedBytes, p.file),
  }).finally(() => bar.stop());
  process.stderr.write(`downloaded ${pulled.files.length} files to ${pulled.dir}${os.EOL}`);

  const db = await openDatabase(config, {
    schema: SAE_SCHEMA,
    migrationsDir: SAE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  try {
    const { row, sparsity } = await importPulledSae(db.sql, config.dataDir, {
      folder: pulled.dir,
      sparsityFile: pulled.sparsityFile,
      source: { repo, revision: options.revision, commit: pulled.commit, subfolder: options.path ?? '' },
      id: options.id,
      ...checks,
    });
    await printJson({
      id: row.id,
      model: row.model,
      hook: row.hook,
      architecture: row.architecture,
      dIn: row.dIn,
      dSae: row.dSae,
      path: row.weightsPath,
      sparsity,
      source: { repo, revision: options.revision, commit: pulled.commit ?? null, path: options.path ?? '' },
      modelCheck: model.checked ? `matches ${model.checked.manifest.name}` : model.skipped,
    });
  } finally {
    await db.close();
  }
}

/**
 * The model the SAE must fit: --model when given (it must exist), else the served model (LOUPE_MODEL)
 * when it is converted here; without either the check is skipped and the output says so.
 */
async function checkModel(
  config: LoupeConfig,
  explicit: string | undefined,
): Promise<{ checked?: { manifest: ModelManifest; dir: string }; skipped?: string }> {
  const given = explicit ?? config.model;
  let dir: string;
  try {
    dir = resolveModelDir(modelsDir(config), given);
  } catch (err) {
    if (explicit !== undefined || !(err instanceof LoupeError)) throw err;
    return { skipped: `skipped: the served model "${given}" is not converted here; pass --model to check` };
  }
  return { checked: { manifest: await readManifest(dir), dir } };
}

function positiveOrUndefined(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UserInputError(`${flag} must be a positive number, got ${value}`);
  return n;
}
