import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import type { FeatureClamp } from '@loupe/common/grpc';
import { type Sae, type SaeArchitecture, writeSaeLens } from '@loupe/sae';
import { runCli } from './process.js';
import { D } from './workbench.js';

// A random standard (ReLU) SAE for CLAMP / ABLATE, which the workbench's TopK SAE refuses. It reads
// layer 0 (before every shop collection's hook), not the TopK SAE's hook, so that hook's newest SAE is
// still the TopK one. One feature never fires, so ablating it must change nothing.
export const RELU_HOOK = 'blocks.0.hook_resid_pre';
export const RELU_D_SAE = 32;
/** a feature whose encoder bias keeps it at 0 on every input */
export const RELU_SILENT = 5;

export function reluSae(seed: number): Sae {
  return silentFeatureSae(seed, {
    architecture: 'standard',
    hook: RELU_HOOK,
    dSae: RELU_D_SAE,
    silent: RELU_SILENT,
  });
}

/** A random SAE of the tiny model (d_model D) in which feature `silent` never fires (its bias is -1e4). */
export function silentFeatureSae(
  seed: number,
  options: { architecture: SaeArchitecture; hook: string; dSae: number; silent: number; k?: number },
): Sae {
  const { dSae } = options;
  const rng = new Rng(seed);
  const b_enc = rng.normalFloat32(dSae, 0, 0.1);
  b_enc[options.silent] = -1e4;
  return {
    config: {
      architecture: options.architecture,
      dIn: D,
      dSae,
      k: options.k,
      hookName: options.hook,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(D * dSae, 0, 0.3),
      b_enc,
      W_dec: rng.normalFloat32(dSae * D, 0, 0.3),
      b_dec: rng.normalFloat32(D, 0, 0.05),
    },
  };
}

/** Writes the SAE as SAELens files and imports it with `loupe sae import` into the running services' library. */
export async function importReluSae(env: Record<string, string>, id: string, sae: Sae): Promise<void> {
  const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-relu-sae-'));
  await writeSaeLens(folder, sae);
  const imported = await runCli(['sae', 'import', folder, '--id', id], env);
  await fs.rm(folder, { recursive: true, force: true });
  if (imported.code !== 0) throw new Error(`loupe sae import failed:\n${imported.stderr}`);
}

/** The capture clamp of feature f held at value, read straight from the SAE's weights (not through any service). */
export function clampFromWeights(sae: Sae, f: number, value: number): FeatureClamp {
  const { W_enc, b_enc, W_dec, b_dec } = sae.weights;
  const dSae = sae.config.dSae;
  return {
    hook: RELU_HOOK,
    encoderColumn: Array.from({ length: D }, (_, j) => W_enc[j * dSae + f]),
    encoderBias: b_enc[f],
    bDec: Array.from(b_dec),
    decoderRow: Array.from(W_dec.subarray(f * D, (f + 1) * D)),
    threshold: 0,
    value,
  };
}
