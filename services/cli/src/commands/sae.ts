import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, UserInputError } from '@loupe/common';
import { openDatabase, type Sql } from '@loupe/common/db';
import { resolveActivations } from '@loupe/records';
import {
  ActivationDataset,
  B_DEC_INITS,
  type BDecInit,
  CFG_FILE,
  evaluateHeldOut,
  exportSae,
  importSae,
  isTrainableArchitecture,
  openActivationSource,
  SAE_ARCHITECTURES,
  SAE_MIGRATIONS_DIR,
  SAE_SCHEMA,
  TRAINABLE_ARCHITECTURES,
  type TrainableArchitecture,
  trainSae,
  WEIGHTS_FILE,
  writeSaeLens,
} from '@loupe/sae';
import { progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

interface TrainOptions {
  activations: string;
  tensor?: string;
  hook?: string;
  arch: string;
  width: string;
  k: string;
  sparsity?: string;
  steps: string;
  batch: string;
  lr?: string;
  seed: string;
  shuffleBuffer: string;
  holdout: string;
  normalize?: boolean;
  normalizeVectors: string;
  deadWindow: string;
  bDecInit: string;
  evalVectors: string;
  out: string;
  force?: boolean;
  checkpointEvery: string;
  auxk?: string;
}

/** Where `loupe sae train --out <dir>` keeps its checkpoints; rerunning the command resumes from them. */
const CHECKPOINTS_DIR = 'checkpoints';

function whole(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UserInputError(`${flag} must be a whole number ≥ ${min}, got ${value}`);
  return n;
}

function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UserInputError(`${flag} must be a positive number, got ${value}`);
  return n;
}

function nonNegativeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UserInputError(`${flag} must be a number ≥ 0, got ${value}`);
  return n;
}

function percent(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 100)
    throw new UserInputError(`${flag} must be a percentage in [0, 100), got ${value}`);
  return n / 100;
}

function architecture(value: string): TrainableArchitecture {
  if (isTrainableArchitecture(value)) return value;
  const readable = (SAE_ARCHITECTURES as readonly string[]).includes(value);
  throw new UserInputError(
    readable
      ? `--arch ${value} can be imported but not trained; train one of: ${TRAINABLE_ARCHITECTURES.join(', ')}`
      : `--arch ${value} is unknown; train one of: ${TRAINABLE_ARCHITECTURES.join(', ')}`,
  );
}

function bDecInit(value: string): BDecInit {
  if ((B_DEC_INITS as readonly string[]).includes(value)) return value as BDecInit;
  throw new UserInputError(`--b-dec-init ${value} is unknown; use one of: ${B_DEC_INITS.join(', ')}`);
}

/** Refuses to mix a new SAE into a folder that already holds one, unless told to replace it. */
async function checkOut(dir: string, force: boolean): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (!force && (entries.includes(CFG_FILE) || entries.includes(WEIGHTS_FILE)))
    throw new UserInputError(`--out ${dir} already holds an SAE; pass --force to replace it`);
}

/** `loupe sae train`: trains in this process and writes an SAELens folder. */
export async function train(options: TrainOptions): Promise<void> {
  const config = loadConfig();
  const arch = architecture(options.arch);
  const width = whole(options.width, '--width');
  const settings = {
    architecture: arch,
    width,
    k: whole(options.k, '--k'),
    sparsity: options.sparsity === undefined ? undefined : positiveNumber(options.sparsity, '--sparsity'),
    steps: whole(options.steps, '--steps'),
    batchSize: whole(options.batch, '--batch'),
    lr: options.lr === undefined ? undefined : positiveNumber(options.lr, '--lr'),
    seed: whole(options.seed, '--seed', 0),
    shuffleCapacity: whole(options.shuffleBuffer, '--shuffle-buffer'),
    heldOutFraction: percent(options.holdout, '--holdout'),
    normaliseVectors: options.normalize ? whole(options.normalizeVectors, '--normalize-vectors') : 0,
    deadWindowTokens: whole(options.deadWindow, '--dead-window'),
    bDecInit: bDecInit(options.bDecInit),
    auxkCoefficient: options.auxk === undefined ? undefined : nonNegativeNumber(options.auxk, '--auxk'),
    checkpointEvery: whole(options.checkpointEvery, '--checkpoint-every'),
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  };
  const evalVectors = whole(options.evalVectors, '--eval-vectors', 0);
  const out = path.resolve(options.out);
  await checkOut(out, options.force ?? false);
  const checkpointDir = path.join(out, CHECKPOINTS_DIR);
  // --force starts over: checkpoints of an earlier run must not be resumed
  if (options.force) await rm(checkpointDir, { recursive: true, force: true });
  const activations = resolveActivations(config.dataDir, options.activations);
  const source = await openActivationSource(activations, {
    tensor: options.tensor,
    hook: options.hook,
  });
  process.stderr.write(
    `training ${arch} SAE: ${source.rows} vectors of width ${source.width}${source.hook ? ` at ${source.hook}` : ''}, width ${width}, k ${settings.k}\n`,
  );
  const bar = progressBar('training');
  try {
    const result = await trainSae(source, {
      ...settings,
      checkpointDir,
      onProgress: (p) =>
        bar.update(
          p.step,
          p.steps,
          `loss ${p.loss.toPrecision(4)} L0 ${p.l0.toFixed(1)} dead ${(100 * p.deadFraction).toFixed(1)}% dense ${(100 * p.denseFraction).toFixed(1)}%`,
        ),
    });
    bar.stop();
    if (result.resumedFrom > 0)
      process.stderr.write(`resumed from the checkpoint at step ${result.resumedFrom}\n`);
    await writeSaeLens(out, result.sae, {
      trained_by: 'loupe sae train',
      steps: settings.steps,
      batch_size: settings.batchSize,
      lr: result.lr,
      seed: settings.seed,
      source: activations,
      train_vectors: result.trainVectors,
      held_out_vectors: result.heldOutVectors,
    });
    // Raw vectors: the saved weights have any normalisation folded in.
    const heldOut = new ActivationDataset(source, {
      batchSize: settings.batchSize,
      shuffleCapacity: 1,
      seed: settings.seed,
      heldOutFraction: settings.heldOutFraction,
    });
    const evaluation = await evaluateHeldOut(result.sae, heldOut, evalVectors);
    await printJson({
      out,
      architecture: arch,
      dIn: source.width,
      dSae: width,
      k: settings.k,
      steps: settings.steps,
      tokens: result.final.tokens,
      loss: result.final.loss,
      l0: result.final.l0,
      deadFraction: result.final.deadFraction,
      deadWindowTokens: Math.min(settings.deadWindowTokens, result.final.tokens),
      denseFraction: result.final.denseFraction,
      denseThreshold: result.denseThreshold,
      denseWindowTokens: result.final.denseWindowTokens,
      resumedFrom: result.resumedFrom,
      lr: result.lr,
      activationScale: result.activationScale,
      trainVectors: result.trainVectors,
      heldOutVectors: result.heldOutVectors,
      provider: result.provider,
      heldOut: evaluation,
    });
  } finally {
    bar.stop();
  }
}

async function withSaeDatabase<T>(action: (sql: Sql, dataDir: string) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config, {
    schema: SAE_SCHEMA,
    migrationsDir: SAE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  try {
    return await action(db.sql, config.dataDir);
  } finally {
    await db.close();
  }
}

/** `loupe sae import <dir>`: a SAELens folder into the library and the feature store. */
export async function importCommand(dir: string, options: { id?: string }): Promise<void> {
  const row = await withSaeDatabase((sql, dataDir) => importSae(sql, dataDir, dir, options));
  await printJson({
    id: row.id,
    model: row.model,
    hook: row.hook,
    architecture: row.architecture,
    dIn: row.dIn,
    dSae: row.dSae,
    path: row.weightsPath,
  });
}

/** `loupe sae export <id> --out <dir>`: a library SAE as a SAELens folder. */
export async function exportCommand(id: string, options: { out: string }): Promise<void> {
  const row = await withSaeDatabase((sql) => exportSae(sql, id, options.out));
  await printJson({ id: row.id, out: path.resolve(options.out) });
}
