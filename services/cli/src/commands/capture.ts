import os from 'node:os';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA, prepareCaptureJob, runCaptureJob } from '@loupe/capture';
import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
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
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UserInputError(`${flag} must be a positive whole number, got ${value}`);
  return n;
}

/** Runs a capture job in this process; re-running the same command after a crash resumes it. */
export async function capture(options: CaptureOptions): Promise<void> {
  const config = loadConfig();
  const maxTokens = positive(options.maxTokens, '--max-tokens');
  const params = {
    windowsPerShard: positive(options.shardWindows, '--shard-windows'),
    shardsPerCheckpoint: positive(options.checkpointShards, '--checkpoint-shards'),
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
    await runCaptureJob(db.sql, runner, job.id, {
      dataDir: config.dataDir,
      worker: `${os.hostname()}:${process.pid}`,
      windows,
      onProgress: (p) => bar.update(p.tokensDone, p.totalTokens, p.phase),
    });
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
