import { LoupeError } from '../errors.js';
import type { Logger } from '../logging.js';
import { outsideRequest } from '../request-context.js';
import type { Sql } from './connect.js';
import { JOB_POLL_MS } from './jobs.js';

export interface JobQueueOptions {
  /** "capture", "training": names the log lines */
  kind: string;
  table: string;
  sql(): Promise<Sql>;
  log: Logger;
  /** runs one job to its end (claiming it is the job's business); the row is the table's row */
  run(row: Record<string, unknown> & { id: string }): Promise<void>;
}

/**
 * Runs a service's queued jobs one at a time, oldest first, in this process: `drain()` starts the loop
 * unless it is running, and the loop stops when no queued or running job is left that it has not tried
 * this round (a job it could not finish, or one a live worker holds, is not retried in a tight loop).
 */
export class JobQueue {
  private draining: Promise<void> | null = null;
  private stopped = false;
  private timer?: NodeJS.Timeout;

  constructor(private readonly options: JobQueueOptions) {}

  /**
   * Drains now and then every JOB_POLL_MS: jobs queued through another replica, and work a dead worker
   * left (an expired lease), are found without anyone telling this process.
   */
  poll(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.drain(), JOB_POLL_MS);
    this.timer.unref();
    this.drain();
  }

  drain(): void {
    if (this.draining || this.stopped) return;
    this.draining = outsideRequest(() => this.runQueued())
      .catch((error: Error) => this.options.log.error({ err: error }, `${this.options.kind} worker stopped`))
      .finally(() => {
        this.draining = null;
      });
  }

  /** Lets the job in hand reach its next checkpoint, then stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.draining?.catch(() => {});
  }

  private async runQueued(): Promise<void> {
    const { kind, table, log } = this.options;
    const sql = await this.options.sql();
    const tried = new Set<string>();
    while (!this.stopped) {
      const [next] = await sql`
        SELECT * FROM ${sql(table)} WHERE status IN ('queued', 'running') AND id <> ALL(${[...tried]}::uuid[])
        ORDER BY created_at LIMIT 1`;
      if (!next) return;
      const row = next as Record<string, unknown> & { id: string };
      tried.add(row.id);
      try {
        log.info({ job: row.id }, `${kind} job started`);
        await this.options.run(row);
        log.info({ job: row.id }, `${kind} job done`);
      } catch (error) {
        const level = error instanceof LoupeError ? 'warn' : 'error';
        log[level]({ job: row.id, err: (error as Error).message }, `${kind} job not run to the end`);
      }
    }
  }
}
