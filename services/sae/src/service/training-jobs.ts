import os from 'node:os';
import { type Logger, type LoupeConfig, LoupeError } from '@loupe/common';
import type { TrainingJob, TrainRequest__Output } from '@loupe/common/grpc';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { runTrainingJob } from '../jobs/run-training-job.js';
import { cancelTrainingJob, createTrainingJob, getTrainingJob } from '../jobs/training-job-store.js';
import { SaeDatabase } from './database.js';
import { CONFIG, LOGGER } from './tokens.js';

/**
 * Queues SAE training jobs and runs them one at a time in this process. A job left running by a
 * process that died is taken over once its claim can be taken (see `runTrainingJob`); failed jobs
 * stay failed until asked for again, so a job that cannot succeed does not loop.
 */
@Injectable()
export class TrainingJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly worker = `${os.hostname()}:${process.pid}`;
  private draining: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly database: SaeDatabase,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async train(request: TrainRequest__Output): Promise<TrainingJob> {
    const job = await createTrainingJob(await this.database.sql(), request);
    this.drain();
    return job;
  }

  async get(id: string): Promise<TrainingJob> {
    const job = await getTrainingJob(await this.database.sql(), id);
    // a job queued before a restart starts once anyone looks at it (or at boot with DATABASE_URL)
    if (job.status === 'queued' || job.status === 'running') this.drain();
    return job;
  }

  async cancel(id: string): Promise<TrainingJob> {
    return cancelTrainingJob(await this.database.sql(), id);
  }

  onApplicationBootstrap(): void {
    // jobs queued (or interrupted) before a restart: only if the database is already configured
    if (this.config.databaseUrl) this.drain();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.draining?.catch(() => {});
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = this.runQueued()
      .catch((error: Error) => this.log.error({ err: error }, 'training worker stopped'))
      .finally(() => {
        this.draining = null;
      });
  }

  private async runQueued(): Promise<void> {
    const sql = await this.database.sql();
    const tried = new Set<string>();
    while (!this.stopped) {
      const [next] = await sql`
        SELECT id FROM training_jobs WHERE status IN ('queued', 'running') AND id <> ALL(${[...tried]}::uuid[])
        ORDER BY created_at LIMIT 1`;
      if (!next) return;
      tried.add(next.id);
      try {
        this.log.info({ job: next.id }, 'training job started');
        const done = await runTrainingJob(sql, next.id, {
          dataDir: this.config.dataDir,
          worker: this.worker,
          device: this.config.device,
          intraOpThreads: this.config.intraOpThreads,
        });
        this.log.info({ job: next.id, sae: done.saeId }, 'training job done');
      } catch (error) {
        const level = error instanceof LoupeError ? 'warn' : 'error';
        this.log[level]({ job: next.id, err: (error as Error).message }, 'training job not run to the end');
      }
    }
  }
}
