import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import type { FeatureClamp } from '@loupe/common/grpc';
import { type Sae, writeSaeLens } from '@loupe/sae';
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
  const rng = new Rng(seed);
  const b_enc = rng.normalFloat32(RELU_D_SAE, 0, 0.1);
  b_enc[RELU_SILENT] = -1e4;
  return {
    config: {
      architecture: 'standard',
      dIn: D,
      dSae: RELU_D_SAE,
      hookName: RELU_HOOK,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: {
      W_enc: rng.normalFloat32(D * RELU_D_SAE, 0, 0.3),
      b_enc,
      W_dec: rng.normalFloat32(RELU_D_SAE * D, 0, 0.3),
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
