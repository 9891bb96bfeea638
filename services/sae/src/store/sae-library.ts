import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import { CFG_FILE, readSaeLens, SPARSITY_FILE, WEIGHTS_FILE } from '../format/saelens.js';
import { findSae, type SaeRow, saveFeatures } from './sae-store.js';

const SAE_FILES = [CFG_FILE, WEIGHTS_FILE];
/** Files a SAELens folder may hold beside the SAE itself; they travel with it when present. */
const OPTIONAL_FILES = [SPARSITY_FILE];
export const RECORDS_FILE = 'records.safetensors';

/** Where imported SAEs live: one SAELens folder per SAE id under the data directory. */
export function saeDir(dataDir: string, id: string): string {
  return path.join(dataDir, 'sae', id);
}

/** An SAE's feature records file, beside its weights in the library. */
export function recordsFile(dataDir: string, saeId: string): string {
  return path.join(saeDir(dataDir, saeId), RECORDS_FILE);
}

/**
 * Takes a SAELens folder into the library: validates it by reading it, copies it under the data
 * directory, and stores one feature row per latent (decoder direction in pgvector). Re-importing the
 * same id replaces it.
 */
export async function importSae(
  sql: Sql,
  dataDir: string,
  source: string,
  options: { id?: string } = {},
): Promise<SaeRow> {
  const sae = await readSaeLens(source);
  const { config } = sae;
  const weightsHash = createHash('sha256')
    .update(await fs.readFile(path.join(source, WEIGHTS_FILE)))
    .digest('hex');
  const id = options.id ?? defaultId(config.modelName, config.hookName, weightsHash);
  const target = saeDir(dataDir, id);
  const staging = `${target}.tmp-${process.pid}`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.mkdir(staging, { recursive: true });
  for (const file of SAE_FILES) await fs.copyFile(path.join(source, file), path.join(staging, file));
  await copyOptional(source, staging);
  await fs.rm(target, { recursive: true, force: true });
  await fs.rename(staging, target);
  await saveFeatures(
    sql,
    {
      id,
      model: config.modelName ?? 'unknown',
      hook: config.hookName ?? 'unknown',
      architecture: config.architecture,
      dIn: config.dIn,
      dSae: config.dSae,
      cfg: JSON.parse(await fs.readFile(path.join(target, CFG_FILE), 'utf8')) as Record<string, unknown>,
      weightsPath: target,
    },
    sae.weights.W_dec,
  );
  return findSae(sql, id);
}

/** Writes a library SAE back out as a SAELens folder (byte for byte what was imported). */
export async function exportSae(sql: Sql, id: string, outDir: string): Promise<SaeRow> {
  const row = await findSae(sql, id);
  const existing = await fs.readdir(outDir).catch(() => [] as string[]);
  if (existing.length > 0)
    throw new UserInputError(`${outDir} is not empty; export into a new or empty folder`);
  await fs.mkdir(outDir, { recursive: true });
  for (const file of SAE_FILES) await fs.copyFile(path.join(row.weightsPath, file), path.join(outDir, file));
  await copyOptional(row.weightsPath, outDir);
  return row;
}

async function copyOptional(from: string, to: string): Promise<void> {
  for (const file of OPTIONAL_FILES) {
    await fs.copyFile(path.join(from, file), path.join(to, file)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

function defaultId(model: string | null, hook: string | null, weightsHash: string): string {
  const part = (s: string | null) => (s ?? 'unknown').replace(/[^A-Za-z0-9._-]/g, '-');
  return `${part(model)}:${part(hook)}:${weightsHash.slice(0, 12)}`;
}
