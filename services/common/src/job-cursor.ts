import { UserInputError } from './errors.js';

/**
 * Where a job sits in a job list. Every job table (capture, training, scoring) is listed newest first by
 * creation time, ties by id, so one position means the same in all three: the gateway merges the three
 * lists into one and hands a job's cursor to each service as the page token of the next page.
 */
export interface JobPosition {
  /** ISO 8601 in UTC with microseconds, e.g. 2026-12-07T18:52:21.123456Z (Postgres' own precision) */
  createdAt: string;
  /** a UUID, lowercase */
  id: string;
}

const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The opaque cursor of a job: base64url of "j:<createdAt>/<id>". */
export function jobCursor(job: JobPosition): string {
  return Buffer.from(`j:${job.createdAt}/${job.id}`).toString('base64url');
}

/** The position a cursor names; a cursor from anywhere else is refused, saying where to get one. */
export function parseJobCursor(cursor: string): JobPosition {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const [createdAt = '', id = ''] = text.startsWith('j:') ? text.slice(2).split('/') : [];
  if (!CREATED_AT.test(createdAt) || !UUID.test(id))
    throw new UserInputError(
      `job cursor "${cursor}" is not one a job list gave out (use the previous page's next page token or endCursor)`,
    );
  return { createdAt, id };
}

/**
 * Newest first: a before b when a was created later, or at the same time with the larger id (the order
 * `ORDER BY created_at DESC, id DESC` gives; both strings compare as Postgres compares the values).
 */
export function compareJobsNewestFirst(a: JobPosition, b: JobPosition): number {
  if (a.createdAt !== b.createdAt) return a.createdAt > b.createdAt ? -1 : 1;
  return a.id === b.id ? 0 : a.id > b.id ? -1 : 1;
}
