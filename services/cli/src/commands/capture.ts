import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA, prepareCaptureJob, runCaptureJob } from '@loupe/capture';
import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { openDatabase, workerName } from '@loupe/common/db';
import { Gpt2Runner, resolveModelDir } from '@loupe/model';
import { progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

interface CaptureOptions {
  model: string;
  dataset: string;
  hooks: string;
  maxTokens: string;
  shardWindows: string;
  checkpointShards: string;
  itemHooks: string;
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UserInputError(`${flag} must be a positive whole number, got ${value}`);
  return n;
}

function whole(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UserInputError(`${flag} must be a whole number ≥ 0, got ${value}`);
  return n;
}

/** How often a worker whose job's remaining items are held by others looks again (for takeovers, the records). */
const WAIT_FOR_OTHERS_MS = 1000;

/**
 * Runs a capture job in this process; re-running the same command after a crash resumes it, and the
 * same command started on several machines (or several times on one) shares the job's work items. re-running the same command after a crash resumes it. */
export async function capture(options: CaptureOptions): Promise<void> {
  const config = loadConfig();
  const maxTokens = positive(options.maxTokens, '--max-tokens');
  const params = {
    windowsPerShard: positive(options.shardWindows, '--shard-windows'),
    shardsPerCheckpoint: positive(options.checkpointShards, '--checkpoint-shards'),
    hooksPerItem: whole(options.itemHooks, '--item-hooks'),
  };
  const hooks = options.hooks
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const runner = await Gpt2Runner.load(resolveModelDir(modelsDir(config), options.model), {
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  });
  const db = await openDatabase(config, {
    schema: CAPTURE_SCHEMA,
    migrationsDir: CAPTURE_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  const bar = progressBar('capturing');
  try {
    const { job, resumed, windows } = await prepareCaptureJob(db.sql, runner, {
      dataset: options.dataset,
      hooks,
      maxTokens,
      params,
    });
    process.stderr.write(
      `${resumed ? 'resuming' : 'starting'} capture job ${job.id}: ${job.totalWindows} windows, ${job.totalTokens} tokens\n`,
    );
    // other workers may hold the last items, or build the records: wait for them (and take over from
    // any that die) until the job is done
    while (
      (await runCaptureJob(db.sql, runner, job.id, {
        dataDir: config.dataDir,
        worker: workerName(),
        windows,
        onProgress: (p) => bar.update(p.tokensDone, p.totalTokens, p.phase),
      })) === 'elsewhere'
    ) {
      await new Promise((resolve) => setTimeout(resolve, WAIT_FOR_OTHERS_MS));
    }
    bar.stop();
    await printJson({
      job: job.id,
      windows: job.totalWindows,
      tokens: job.totalTokens,
      hooks: job.hooks,
      resumed,
    });
  } finally {
    bar.stop();
    await db.close();
    await runner.close();
  }
}
