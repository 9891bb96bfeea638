import os from 'node:os';
import type { Logger, LoupeConfig } from '@loupe/common';
import { JobQueue } from '@loupe/common/db';
import type {
  ListJobsRequest__Output,
  ListTrainingJobsResponse,
  TrainingJob,
  TrainRequest__Output,
} from '@loupe/common/grpc';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { runTrainingJob } from '../jobs/run-training-job.js';
import {
  cancelTrainingJob,
  createTrainingJob,
  getTrainingJob,
  listTrainingJobs,
} from '../jobs/training-job-store.js';
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
  private readonly queue: JobQueue;

  constructor(
    private readonly database: SaeDatabase,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) log: Logger,
  ) {
    this.queue = new JobQueue({
      kind: 'training',
      table: 'training_jobs',
      sql: () => this.database.sql(),
      log,
      run: async (job) => {
        await runTrainingJob(await this.database.sql(), job.id, {
          dataDir: this.config.dataDir,
          worker: this.worker,
          device: this.config.device,
          intraOpThreads: this.config.intraOpThreads,
          owner: 'sae',
        });
      },
    });
  }

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

  async list(request: ListJobsRequest__Output): Promise<ListTrainingJobsResponse> {
    return listTrainingJobs(await this.database.sql(), request);
  }

  async cancel(id: string): Promise<TrainingJob> {
    return cancelTrainingJob(await this.database.sql(), id);
  }

  onApplicationBootstrap(): void {
    // jobs queued (or interrupted) before a restart, through another replica, or left by a dead worker:
    // only if the database is already configured
    if (this.config.databaseUrl) this.queue.poll();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue.stop();
  }

  private drain(): void {
    this.queue.drain();
  }
}
