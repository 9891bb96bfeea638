import fs from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError, SafetensorsReader } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type { ModelManifest } from '@loupe/model';
import { CFG_FILE, readSaeLens, readSaeLensCfg, SPARSITY_FILE, writeSaeLens } from '../format/saelens.js';
import { importSae } from '../store/sae-library.js';
import type { SaeRow } from '../store/sae-store.js';
import { loupeModelName, matchSaeToModel } from './model-match.js';

export interface PulledSaeSource {
  repo: string;
  revision: string;
  commit?: string;
  subfolder: string;
}

export interface ImportPulledOptions {
  /** the downloaded SAELens folder, in whatever layout its release used */
  folder: string;
  /** its sparsity file's name inside `folder`, when it has one */
  sparsityFile?: string;
  source: PulledSaeSource;
  id?: string;
  /** the converted model to check the SAE against and to file it under */
  model?: { manifest: ModelManifest; dir: string };
  /** for expected_average_only_in SAEs: SAELens' norm_scaling_factor, folded into the weights */
  normScalingFactor?: number;
  /** the release's center_writing_weights, when it says so outside the folder (see ReadSaeLensOptions) */
  centerWritingWeights?: boolean;
}

export interface ImportedPulledSae {
  row: SaeRow;
  /** whether the SAE's sparsity file came along */
  sparsity: boolean;
}

/**
 * Imports a downloaded SAE into the library and the feature store. The folder is read with its
 * release's semantics (saelens-cfg.ts) and stored as a v6 SAELens folder with everything folded in,
 * so the library, the ONNX encoder, the feature store and SAELens itself (on export) read one layout;
 * the original cfg.json and where it came from ride along under `loupe` in the new cfg.
 */
export async function importPulledSae(
  sql: Sql,
  dataDir: string,
  options: ImportPulledOptions,
): Promise<ImportedPulledSae> {
  const { folder, source } = options;
  const sae = await readSaeLens(folder, {
    normScalingFactor: options.normScalingFactor,
    centerWritingWeights: options.centerWritingWeights,
  });
  const modelName = options.model
    ? matchSaeToModel(sae.config, options.model.manifest, options.model.dir)
    : sae.config.modelName && loupeModelName(sae.config.modelName);
  const originalCfg = JSON.parse(await fs.readFile(path.join(folder, CFG_FILE), 'utf8')) as unknown;

  // On the data directory's disk, and outside the library, where no SAE id can collide with it.
  const staging = path.join(dataDir, 'hub', `.import-${process.pid}-${Date.now()}`);
  await fs.rm(staging, { recursive: true, force: true });
  try {
    await writeSaeLens(
      staging,
      { config: { ...sae.config, modelName }, weights: sae.weights },
      {
        pulled_from: {
          repo: source.repo,
          revision: source.revision,
          ...(source.commit ? { commit: source.commit } : {}),
          path: source.subfolder,
        },
        ...(options.normScalingFactor !== undefined
          ? { norm_scaling_factor: options.normScalingFactor }
          : {}),
        ...(options.centerWritingWeights !== undefined
          ? { center_writing_weights: options.centerWritingWeights }
          : {}),
        original_cfg: originalCfg,
      },
    );
    if (options.sparsityFile) {
      const from = path.join(folder, options.sparsityFile);
      await checkSparsity(from, sae.config.dSae);
      await fs.copyFile(from, path.join(staging, SPARSITY_FILE));
    }
    const row = await importSae(sql, dataDir, staging, options.id ? { id: options.id } : {});
    return { row, sparsity: options.sparsityFile !== undefined };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

/**
 * The checks a downloaded cfg.json allows before the weights come: the layout is one Loupe reads, and
 * the SAE fits the model (its width too, when cfg.json states it).
 */
export async function checkPulledCfg(
  cfgFile: string,
  options: Pick<ImportPulledOptions, 'model' | 'normScalingFactor' | 'centerWritingWeights'>,
): Promise<void> {
  const { config, dInStated } = await readSaeLensCfg(path.dirname(cfgFile), options);
  if (options.model) matchSaeToModel(config, options.model.manifest, options.model.dir, dInStated);
}

/** SAELens' sparsity file holds one tensor `sparsity` of d_sae log10 firing frequencies. */
async function checkSparsity(file: string, dSae: number): Promise<void> {
  const reader = await SafetensorsReader.open(file).catch((err: Error) => {
    throw new CheckpointError(`${file}: not a safetensors file (${err.message})`);
  });
  try {
    const info = reader.tensors.get('sparsity');
    const size = info?.shape.reduce((a, b) => a * b, 1);
    if (!info || size !== dSae)
      throw new CheckpointError(
        `${file}: expected a tensor "sparsity" of d_sae = ${dSae} values, found ${
          info ? `[${info.shape.join(', ')}]` : `only ${[...reader.tensors.keys()].join(', ') || 'nothing'}`
        }`,
      );
  } finally {
    await reader.close();
  }
}
