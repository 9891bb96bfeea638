import os from 'node:os';
import { recordJobFinished } from '../metrics/record.js';
import type { Sql } from './connect.js';

/**
 * The claim / heartbeat / finish protocol every durable job table follows (capture jobs, SAE training
 * jobs). A table using it has: id, status ('queued' | 'running' | 'done' | 'failed' | 'cancelled'), phase
 * (with a 'done' value), worker, heartbeat_at, attempts, error, updated_at, finished_at.
 */

/** A worker that has not written a heartbeat for this long is taken to be dead. */
export const STALE_AFTER_SECONDS = 30;

/** How often an idle worker looks for jobs queued elsewhere or left by a dead worker. */
export const JOB_POLL_MS = 2000;

/** This process as a job worker: host and pid, so a process on the same host can tell if it died. */
export function workerName(): string {
  return `${os.hostname()}:${process.pid}`;
}

/** Whether `worker` (as workerName writes it) ran on this host under a process id that no longer exists. */
export function isDeadLocalWorker(worker: string | null): boolean {
  const [host, pid] = (worker ?? '').split(':');
  if (!worker || host !== os.hostname() || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

/**
 * Takes job `id` of `table` for `worker` if it is queued, failed, or running under a worker whose
 * heartbeat went stale or that the caller knows to be dead (`deadWorker`: same host, process gone). Row
 * locking (FOR UPDATE SKIP LOCKED) makes two workers racing for one job end with exactly one owner.
 * Returns the claimed row's `columns`, or null when the job is not claimable.
 */
export async function claimJobRow(
  sql: Sql,
  table: string,
  columns: string,
  id: string,
  worker: string,
  options: { deadWorker?: string } = {},
): Promise<Record<string, unknown> | null> {
  const [row] = await sql`
    UPDATE ${sql(table)} SET status = 'running', worker = ${worker}, heartbeat_at = now(), updated_at = now(),
           attempts = attempts + 1, error = NULL
    WHERE id = (
      SELECT id FROM ${sql(table)}
      WHERE id = ${id}
        AND (status IN ('queued', 'failed')
             OR (status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => ${STALE_AFTER_SECONDS})))
             OR (status = 'running' AND worker = ${options.deadWorker ?? null}))
      FOR UPDATE SKIP LOCKED)
    RETURNING ${sql.unsafe(columns)}`;
  return row ?? null;
}

/** Keeps a claim alive between progress writes (a heartbeat every third of the stale time). */
export function keepJobAlive(sql: Sql, table: string, id: string, worker: string): () => void {
  const timer = setInterval(
    () => {
      sql`UPDATE ${sql(table)} SET heartbeat_at = now() WHERE id = ${id} AND worker = ${worker} AND status = 'running'`.catch(
        () => {},
      );
    },
    (STALE_AFTER_SECONDS * 1000) / 3,
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** Ends a claimed job: done (phase 'done') or failed with its error (phase kept, for the resume). */
export async function finishJobRow(
  sql: Sql,
  table: string,
  id: string,
  worker: string,
  outcome: { error?: string },
): Promise<void> {
  const finished = await sql`
    UPDATE ${sql(table)} SET status = ${outcome.error ? 'failed' : 'done'}, phase = ${outcome.error ? sql`phase` : 'done'},
           error = ${outcome.error ?? null}, finished_at = now(), updated_at = now(), heartbeat_at = NULL
    WHERE id = ${id} AND worker = ${worker} AND status = 'running'`;
  if (finished.count) recordJobFinished(table, outcome.error ? 'failed' : 'done');
}
