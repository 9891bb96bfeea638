import type { Logger } from '@loupe/common';
import { retryWhileUnavailable, type Sql } from '@loupe/common/db';
import { UsageMeter } from '../llm/types.js';
import type { RecordSource } from '../units/record-source.js';
import {
  claimUnit,
  completeUnit,
  failUnit,
  getJob,
  type JobLlm,
  type JobRow,
  setJobStatus,
  unfinishedUnits,
} from './job-store.js';
import { scoreUnit, type UnitModels } from './score-unit.js';

export interface JobRunnerDeps {
  sql: Sql;
  records: RecordSource;
  models(llm: JobLlm): UnitModels;
  /** How long a claim holds without renewal; a crashed worker's units are free again after it. */
  leaseMs?: number;
  log?: Logger;
  /** Embeds explanations for semantic search, when an embeddings server is configured. */
  embed?: (text: string) => Promise<number[] | undefined>;
}

const DEFAULT_LEASE_MS = 60_000;

/**
 * Works a job until no unit is left to claim, it is cancelled, its token budget is spent, or `signal`
 * aborts. `concurrency` workers claim units independently; other processes may work the same job.
 */
export async function runJob(deps: JobRunnerDeps, jobId: string, signal?: AbortSignal): Promise<JobRow> {
  // A database restart is waited out (every statement below is guarded by the unit's claim, so
  // repeating one is safe) instead of failing the job.
  const db = <T>(work: () => Promise<T>) => retryWhileUnavailable(work, { signal });
  const start = await db(() => getJob(deps.sql, jobId));
  if (start.status === 'queued') await db(() => setJobStatus(deps.sql, jobId, 'running'));
  const models = deps.models(start.llm);
  const leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;

  const worker = async () => {
    while (!signal?.aborted) {
      const job = await db(() => getJob(deps.sql, jobId));
      if (job.status !== 'running') return;
      if (job.budgetTokens > 0 && job.promptTokens + job.completionTokens >= job.budgetTokens) {
        await db(() => setJobStatus(deps.sql, jobId, 'budget_exhausted'));
        return;
      }
      const claim = await db(() => claimUnit(deps.sql, jobId, leaseMs));
      if (!claim) return;
      const meter = new UsageMeter();
      // Renew the lease while the unit is worked on, so only a dead worker's units are taken over.
      const heartbeat = setInterval(() => {
        deps.sql`
          UPDATE scoring_job_units SET lease_until = now() + ${leaseMs} * interval '1 millisecond'
          WHERE job_id = ${jobId} AND position = ${claim.position} AND claim_token = ${claim.token}`.catch(
          () => {},
        );
      }, leaseMs / 3);
      try {
        const records = await deps.records.records(claim.unit);
        const result = await scoreUnit(claim.unit, records, job.method, models, { seed: job.seed, meter });
        const embedding = await deps.embed?.(result.explanation);
        const stored = await db(() => completeUnit(deps.sql, claim, result, embedding));
        if (!stored)
          deps.log?.warn({ job: jobId, unit: claim.unit }, 'unit was taken over by another worker');
      } catch (error) {
        deps.log?.warn(
          { job: jobId, unit: claim.unit, err: (error as Error).message },
          'unit attempt failed',
        );
        await db(() =>
          failUnit(deps.sql, claim, (error as Error).message, job.maxAttempts, meter.snapshot()),
        );
      } finally {
        clearInterval(heartbeat);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: start.concurrency }, worker));
  } catch (error) {
    await setJobStatus(deps.sql, jobId, 'failed', (error as Error).message);
    throw error;
  }
  if (!signal?.aborted && (await db(() => unfinishedUnits(deps.sql, jobId))) === 0)
    await db(() => setJobStatus(deps.sql, jobId, 'done'));
  return db(() => getJob(deps.sql, jobId));
}
