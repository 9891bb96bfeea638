import path from 'node:path';
import { type Logger, type LoupeConfig, UserInputError } from '@loupe/common';
import { JobQueue, workerName } from '@loupe/common/db';
import type { CaptureJob, ListCaptureJobsResponse, ListJobsRequest__Output } from '@loupe/common/grpc';
import { DEFAULT_DATASET } from '@loupe/records';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { prepareCaptureJob, runCaptureJob } from '../capture/capture-job.js';
import { type CaptureJobRow, getJob, listJobs } from '../capture/job-store.js';
import { CaptureDatabase } from './database.js';
import { ModelRegistry } from './model-registry.js';
import { CONFIG, LOGGER } from './tokens.js';

const MAX_CAPTURE_TOKENS = 100_000_000;

/**
 * Queues capture jobs and works on them in this process, one at a time, sharing each job's work items
 * with every other replica (see runCaptureJob); a poll finds jobs queued elsewhere and items a dead
 * worker left.
 */
@Injectable()
export class CaptureJobs implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly worker = workerName();
  private readonly queue: JobQueue;

  constructor(
    private readonly database: CaptureDatabase,
    private readonly models: ModelRegistry,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) log: Logger,
  ) {
    this.queue = new JobQueue({
      kind: 'capture',
      table: 'capture_jobs',
      sql: () => this.database.sql(),
      log,
      run: async (job) => {
        const { runner } = await this.models.get(job.model as string);
        await runCaptureJob(await this.database.sql(), runner, job.id, {
          dataDir: this.config.dataDir,
          worker: this.worker,
        });
      },
    });
  }

  async start(request: {
    model: string;
    dataset: string;
    hooks: string[];
    maxTokens: number;
  }): Promise<CaptureJob> {
    if (
      !Number.isInteger(request.maxTokens) ||
      request.maxTokens <= 0 ||
      request.maxTokens > MAX_CAPTURE_TOKENS
    ) {
      throw new UserInputError(`max_tokens must be 1-${MAX_CAPTURE_TOKENS}, got ${request.maxTokens}`);
    }
    const sql = await this.database.sql();
    const { runner } = await this.models.get(request.model);
    const { job } = await prepareCaptureJob(sql, runner, {
      dataset: this.datasetPath(request.dataset),
      hooks: request.hooks,
      maxTokens: request.maxTokens,
    });
    this.drain();
    return toMessage(job);
  }

  async get(id: string): Promise<CaptureJob> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UserInputError(`"${id}" is not a capture job id (a UUID)`);
    return toMessage(await getJob(await this.database.sql(), id));
  }

  /** A page of jobs, newest first, optionally of one status. */
  async list(request: ListJobsRequest__Output): Promise<ListCaptureJobsResponse> {
    const page = await listJobs(await this.database.sql(), request);
    return { jobs: page.jobs.map(toMessage), nextPageToken: page.nextPageToken, total: page.total };
  }

  /**
   * Marks a queued, running or failed job cancelled (finished jobs stay as they are). The running
   * worker's next checkpoint is guarded by status = 'running', so it stops there: the files it wrote
   * are those of a consistent checkpoint or unreferenced by the row. A cancelled job leaves the
   * resumable set, so the same request again starts a new job.
   */
  async cancel(id: string): Promise<CaptureJob> {
    const job = await this.get(id);
    if (job.status === 'done' || job.status === 'cancelled') return job;
    const sql = await this.database.sql();
    await sql`
      UPDATE capture_jobs SET status = 'cancelled', error = 'cancelled on request', finished_at = now(), updated_at = now()
      WHERE id = ${id} AND status IN ('queued', 'running', 'failed')`;
    return this.get(id);
  }

  /** Clients name datasets inside the data directory only; the service never reads other paths for them. */
  private datasetPath(dataset: string): string {
    if (dataset === '' || dataset === DEFAULT_DATASET) return DEFAULT_DATASET;
    const root = path.join(this.config.dataDir, 'datasets');
    const resolved = path.resolve(root, dataset);
    if (!resolved.startsWith(`${root}${path.sep}`)) {
      throw new UserInputError(`dataset "${dataset}" must be "default" or a path inside ${root}`);
    }
    return resolved;
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

function toMessage(job: CaptureJobRow): CaptureJob {
  return {
    id: job.id,
    status: job.status,
    phase: job.phase,
    model: job.model,
    dataset: job.dataset,
    hooks: job.hooks,
    windowsDone: job.windowsDone,
    totalWindows: job.totalWindows,
    tokensDone: job.tokensDone,
    totalTokens: job.totalTokens,
    error: job.error ?? '',
    createdAt: job.createdAt,
  };
}
