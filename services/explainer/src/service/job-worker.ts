import { type Logger, outsideRequest } from '@loupe/common';
import { JOB_POLL_MS } from '@loupe/common/db';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { runJob } from '../jobs/job-runner.js';
import { activeJobIds } from '../jobs/job-store.js';
import type { RecordSource } from '../units/record-source.js';
import { ExplainerDatabase } from './database.js';
import { Models } from './models.js';
import { LOGGER, RECORD_SOURCE } from './tokens.js';

/**
 * Runs scoring jobs in the background: at start (resuming whatever a crash left running), whenever a
 * job is queued here, and on a slow poll for jobs queued elsewhere. Each job runs once per process.
 */
@Injectable()
export class JobWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly stop = new AbortController();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly database: ExplainerDatabase,
    private readonly models: Models,
    @Inject(RECORD_SOURCE) private readonly records: RecordSource,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.kick(), JOB_POLL_MS);
    this.timer.unref();
    this.kick();
  }

  /** Looks for jobs now. */
  kick(): void {
    outsideRequest(() => this.poll()).catch((error: Error) =>
      this.log.warn({ err: error.message }, 'job poll failed'),
    );
  }

  private async poll(): Promise<void> {
    if (this.stop.signal.aborted) return;
    const sql = await this.database.sql();
    for (const id of await activeJobIds(sql)) {
      if (this.running.has(id)) continue;
      const run = runJob(
        {
          sql,
          records: this.records,
          models: (llm) => this.models.forJob(llm),
          log: this.log,
          embed: (text) => this.models.embed(text),
        },
        id,
        this.stop.signal,
      )
        .then((job) =>
          this.log.info({ job: id, status: job.status, done: job.unitsDone }, 'scoring job stopped'),
        )
        .catch((error: Error) => this.log.error({ job: id, err: error.message }, 'scoring job failed'))
        .finally(() => this.running.delete(id));
      this.running.set(id, run);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    this.stop.abort();
    await Promise.allSettled(this.running.values());
  }
}
