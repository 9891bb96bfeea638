import { UserInputError } from '../errors.js';
import { jobCursor, parseJobCursor } from '../job-cursor.js';
import type { Sql } from './connect.js';

/** Jobs per page when a ListJobsRequest gives page_size 0, and the most it may ask for. */
export const DEFAULT_JOB_PAGE = 20;
export const MAX_JOB_PAGE = 100;

/**
 * A job row's creation time as job lists order it and their cursors name it (ISO 8601, UTC,
 * microseconds: a JavaScript Date would drop the microseconds and break ties): select it with this.
 */
export const CREATED_AT_ISO = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_iso`;

export interface JobListRequest {
  /** empty = every status */
  status: string;
  /** 0 = DEFAULT_JOB_PAGE */
  pageSize: number;
  /** empty = from the newest job */
  pageToken: string;
}

export interface JobListPage {
  /** the table's rows, newest first, each with `created_at_iso` (ISO 8601, UTC, microseconds) added */
  rows: (Record<string, unknown> & { id: string; created_at_iso: string })[];
  /** the cursor of the page's last job when more follow, else empty */
  nextPageToken: string;
  /** jobs with the requested status, on every page */
  total: number;
}

/**
 * One page of a job table (capture_jobs, training_jobs, scoring_jobs: each has id uuid and created_at),
 * newest first by creation time then id: a keyset page, so jobs created while someone pages through the
 * list neither repeat nor vanish from the pages after the one they were on. `statuses` are the table's
 * statuses; `kind` names the jobs in errors.
 */
export async function listJobRows(
  sql: Sql,
  table: string,
  request: JobListRequest,
  statuses: readonly string[],
  kind: string,
): Promise<JobListPage> {
  if (request.status !== '' && !statuses.includes(request.status))
    throw new UserInputError(
      `unknown ${kind} job status "${request.status}": use one of ${statuses.join(', ')} (or none for all)`,
    );
  const size = request.pageSize || DEFAULT_JOB_PAGE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_JOB_PAGE)
    throw new UserInputError(`page_size must be 1-${MAX_JOB_PAGE} (0 = ${DEFAULT_JOB_PAGE}), got ${size}`);
  const after = request.pageToken ? parseJobCursor(request.pageToken) : null;
  const status = request.status ? sql`status = ${request.status}` : sql`true`;
  const position = after
    ? sql`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`
    : sql`true`;
  const rows = await sql<JobListPage['rows']>`
    SELECT *, ${sql.unsafe(CREATED_AT_ISO)}
    FROM ${sql(table)}
    WHERE ${status} AND ${position}
    ORDER BY created_at DESC, id DESC
    LIMIT ${size + 1}`;
  const [{ count }] = await sql<{ count: number }[]>`
    SELECT count(*)::int AS count FROM ${sql(table)} WHERE ${status}`;
  const page = rows.slice(0, size);
  const last = page.at(-1);
  return {
    rows: page,
    nextPageToken:
      rows.length > size && last ? jobCursor({ createdAt: last.created_at_iso, id: last.id }) : '',
    total: count,
  };
}
