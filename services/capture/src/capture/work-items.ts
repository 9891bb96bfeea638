import { randomUUID } from 'node:crypto';
import { isDeadLocalWorker, type Sql, STALE_AFTER_SECONDS } from '@loupe/common/db';
import type { Window } from '@loupe/records';
import type { CaptureJobRow } from './job-store.js';

/** One leased piece of a capture job: a range of windows for a group of hooks. */
export interface WorkItem {
  jobId: string;
  item: number;
  rangeIndex: number;
  firstWindow: number;
  windows: number;
  tokens: number;
  hooks: string[];
  attempts: number;
  /** only this claim can complete the item; a worker whose lease was taken over cannot */
  token: string;
}

/** Windows per item: one former checkpoint's worth of shards, so shard numbers stay window / windowsPerShard. */
export function windowsPerItem(job: CaptureJobRow): number {
  return job.params.windowsPerShard * job.params.shardsPerCheckpoint;
}

/** The job's hooks cut into groups of `hooksPerItem` (0: one group of all), in the job's hook order. */
export function hookGroups(job: CaptureJobRow): string[][] {
  const size = job.params.hooksPerItem || job.hooks.length;
  const groups: string[][] = [];
  for (let i = 0; i < job.hooks.length; i += size) groups.push(job.hooks.slice(i, i + size));
  return groups;
}

/**
 * Creates the job's items unless they exist (every worker calls this before claiming; the first one
 * creates them, the rest find them).
 */
export async function ensureItems(sql: Sql, job: CaptureJobRow, windows: Window[]): Promise<void> {
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM capture_work_items WHERE job_id = ${job.id}`;
  if (n > 0) return;
  const span = windowsPerItem(job);
  const groups = hookGroups(job);
  const rows: Record<string, unknown>[] = [];
  for (let first = 0, range = 0; first < windows.length; first += span, range++) {
    const slice = windows.slice(first, first + span);
    const tokens = slice.reduce((sum, w) => sum + w.ids.length, 0);
    for (const [g, hooks] of groups.entries()) {
      rows.push({
        job_id: job.id,
        item: range * groups.length + g,
        range_index: range,
        first_window: first,
        windows: slice.length,
        tokens,
        hooks,
      });
    }
  }
  await sql.begin(async (tx) => {
    for (let at = 0; at < rows.length; at += 2000) {
      await tx`
        INSERT INTO capture_work_items ${tx(rows.slice(at, at + 2000), 'job_id', 'item', 'range_index', 'first_window', 'windows', 'tokens', 'hooks')}
        ON CONFLICT DO NOTHING`;
    }
  });
}

/** Holders of the job's running items that ran on this host and whose process is gone. */
async function deadHolders(sql: Sql, jobId: string): Promise<string[]> {
  const rows = await sql<{ worker: string }[]>`
    SELECT DISTINCT worker FROM capture_work_items WHERE job_id = ${jobId} AND status = 'running'`;
  return rows.map((r) => r.worker).filter(isDeadLocalWorker);
}

/**
 * Leases the job's next item in window order: a pending one, one whose lease ran out, or one held by a
 * process on this host that no longer exists. SKIP LOCKED lets racing workers take different items.
 * Nothing is claimed from a job that is not running (cancelled, failed).
 */
export async function claimItem(sql: Sql, jobId: string, worker: string): Promise<WorkItem | null> {
  const dead = await deadHolders(sql, jobId);
  const token = randomUUID();
  const [row] = await sql<Record<string, unknown>[]>`
    UPDATE capture_work_items i
    SET status = 'running', worker = ${worker}, claim_token = ${token}, attempts = i.attempts + 1,
        lease_until = now() + make_interval(secs => ${STALE_AFTER_SECONDS})
    FROM (
      SELECT w.item FROM capture_work_items w JOIN capture_jobs j ON j.id = w.job_id
      WHERE w.job_id = ${jobId} AND j.status = 'running'
        AND (w.status = 'pending'
             OR (w.status = 'running' AND (w.lease_until < now() OR w.worker = ANY(${dead}::text[]))))
      ORDER BY w.item
      LIMIT 1
      FOR UPDATE OF w SKIP LOCKED
    ) next
    WHERE i.job_id = ${jobId} AND i.item = next.item
    RETURNING i.item, i.range_index, i.first_window, i.windows, i.tokens, i.hooks, i.attempts`;
  if (!row) return null;
  return {
    jobId,
    item: Number(row.item),
    rangeIndex: Number(row.range_index),
    firstWindow: Number(row.first_window),
    windows: Number(row.windows),
    tokens: Number(row.tokens),
    hooks: row.hooks as string[],
    attempts: Number(row.attempts),
    token,
  };
}

/** Renews the item's lease while it is worked on (every third of the lease). */
export function keepItemAlive(sql: Sql, item: WorkItem): () => void {
  const timer = setInterval(
    () => {
      sql`
        UPDATE capture_work_items SET lease_until = now() + make_interval(secs => ${STALE_AFTER_SECONDS})
        WHERE job_id = ${item.jobId} AND item = ${item.item} AND claim_token = ${item.token}`.catch(() => {});
    },
    (STALE_AFTER_SECONDS * 1000) / 3,
  );
  timer.unref();
  return () => clearInterval(timer);
}

export interface ShardRow {
  hook: string;
  shard: number;
  path: string;
  firstWindow: number;
  windows: number;
  tokens: number;
  width: number;
}

/**
 * Marks the item done with its shard rows and the job's progress, in one transaction, only while the
 * claim is still this worker's and the job still runs; returns false (writing nothing) otherwise. The
 * item's files are durable before this is called, so a done item never points at missing data.
 */
export async function completeItem(sql: Sql, item: WorkItem, shards: ShardRow[]): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [held] = await tx`
      SELECT 1 FROM capture_work_items i JOIN capture_jobs j ON j.id = i.job_id
      WHERE i.job_id = ${item.jobId} AND i.item = ${item.item} AND i.claim_token = ${item.token}
        AND i.status = 'running' AND j.status = 'running'
      FOR UPDATE OF i`;
    if (!held) return false;
    for (const s of shards) {
      await tx`
        INSERT INTO activation_shards (job_id, hook, shard, path, first_window, windows, tokens, width)
        VALUES (${item.jobId}, ${s.hook}, ${s.shard}, ${s.path}, ${s.firstWindow}, ${s.windows}, ${s.tokens}, ${s.width})
        ON CONFLICT (job_id, hook, shard) DO UPDATE
          SET path = EXCLUDED.path, windows = EXCLUDED.windows, tokens = EXCLUDED.tokens`;
    }
    await tx`
      UPDATE capture_work_items SET status = 'done', lease_until = NULL, error = NULL
      WHERE job_id = ${item.jobId} AND item = ${item.item}`;
    // progress in windows and tokens of the whole job: done items' share, each range counted once
    // per hook group
    await tx`
      UPDATE capture_jobs j SET
        windows_done = p.windows / p.groups, tokens_done = p.tokens / p.groups, updated_at = now()
      FROM (
        SELECT coalesce(sum(windows) FILTER (WHERE status = 'done'), 0) AS windows,
               coalesce(sum(tokens) FILTER (WHERE status = 'done'), 0) AS tokens,
               greatest(count(DISTINCT hooks), 1) AS groups
        FROM capture_work_items WHERE job_id = ${item.jobId}
      ) p
      WHERE j.id = ${item.jobId}`;
    return true;
  });
}

/** Gives an item back after a failed attempt (its worker goes on to fail the job, see runCaptureJob). */
export async function releaseItem(sql: Sql, item: WorkItem, error: string): Promise<void> {
  await sql`
    UPDATE capture_work_items SET status = 'pending', lease_until = NULL, worker = NULL, error = ${error}
    WHERE job_id = ${item.jobId} AND item = ${item.item} AND claim_token = ${item.token} AND status = 'running'`;
}

/** How many of the job's items are not done (pending, or leased by some worker). */
export async function openItems(sql: Sql, jobId: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM capture_work_items WHERE job_id = ${jobId} AND status <> 'done'`;
  return n;
}

/**
 * Whether a worker arriving now would find something to do in the job (an item to claim, or records
 * to build), checked before it plans the job's windows, which means reading its whole dataset.
 */
export async function hasClaimableWork(sql: Sql, job: CaptureJobRow): Promise<boolean> {
  if (job.status === 'queued' || job.status === 'failed') return true;
  if (job.status !== 'running') return false;
  const dead = await deadHolders(sql, job.id);
  const [row] = await sql<{ open: number; claimable: number; items: number }[]>`
    SELECT count(*)::int AS items,
           (count(*) FILTER (WHERE status <> 'done'))::int AS open,
           (count(*) FILTER (WHERE status = 'pending'
                             OR (status = 'running' AND (lease_until < now() OR worker = ANY(${dead}::text[])))))::int AS claimable
    FROM capture_work_items WHERE job_id = ${job.id}`;
  if (row.items === 0 || row.claimable > 0) return true;
  if (row.open > 0) return false;
  // every item done: the records phase, unless a live worker holds the job row for it
  return job.worker === null || isDeadLocalWorker(job.worker) || (await heartbeatStale(sql, job.id));
}

async function heartbeatStale(sql: Sql, jobId: string): Promise<boolean> {
  const [row] = await sql`
    SELECT 1 FROM capture_jobs WHERE id = ${jobId}
      AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => ${STALE_AFTER_SECONDS}))`;
  return Boolean(row);
}
