import { compareJobsNewestFirst, jobCursor, parseJobCursor, UserInputError } from '@loupe/common';
import type { Connection } from '../graphql/connection.js';
import { LIMITS } from '../limits/limits.js';

/**
 * The `jobs` query: capture, training and scoring jobs merged into one list, newest first. Each service
 * lists its own table in the same order (creation time, then id) after the same kind of cursor, so a
 * page of the merged list is the newest `first` of the three services' pages after the cursor, and the
 * cursor of a job is the page token every service understands (@loupe/common jobCursor).
 */
export type JobKind = 'CAPTURE' | 'TRAINING' | 'SCORING';
export const JOB_KINDS: readonly JobKind[] = ['CAPTURE', 'TRAINING', 'SCORING'];

const RUN_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
/** What each service's jobs may be; asking a service for a status it has not is its INVALID_ARGUMENT. */
export const JOB_STATUSES: Record<JobKind, readonly string[]> = {
  CAPTURE: RUN_STATUSES,
  TRAINING: RUN_STATUSES,
  SCORING: [...RUN_STATUSES, 'budget_exhausted'],
};

/** A job as the gateway shows it: what the merge needs, the rest passed through to the GraphQL type. */
export interface JobView {
  kind: JobKind;
  id: string;
  createdAt: string;
}

export interface JobPage<J extends JobView> {
  jobs: J[];
  nextPageToken: string;
  total: number;
}

/** One service's list RPC, its answer already turned into views. */
export type ListJobs<J extends JobView> = (request: {
  status: string;
  pageSize: number;
  pageToken: string;
}) => Promise<JobPage<J>>;

export interface JobsArgs {
  kind?: JobKind | null;
  status?: string | null;
  first?: number | null;
  after?: string | null;
}

/** The kinds to ask, checked: a status none of them has is refused, naming the statuses there are. */
export function kindsToAsk(args: Pick<JobsArgs, 'kind' | 'status'>): JobKind[] {
  const kinds = args.kind ? [args.kind] : [...JOB_KINDS];
  if (!args.status) return kinds;
  const having = kinds.filter((kind) => JOB_STATUSES[kind].includes(args.status!));
  if (having.length === 0) {
    const allowed = args.kind
      ? JOB_STATUSES[args.kind].join(', ')
      : `${RUN_STATUSES.join(', ')} (scoring jobs also budget_exhausted)`;
    throw new UserInputError(
      `unknown ${args.kind ? `${args.kind.toLowerCase()} ` : ''}job status "${args.status}": use one of ${allowed}`,
    );
  }
  return having;
}

/** One page of the merged list. */
export async function mergedJobs<J extends JobView>(
  lists: Record<JobKind, ListJobs<J>>,
  args: JobsArgs,
): Promise<Connection<J>> {
  const first = args.first ?? LIMITS.defaultPage;
  if (!Number.isInteger(first) || first < 0 || first > LIMITS.maxPage)
    throw new UserInputError(`first must be 0-${LIMITS.maxPage}, got ${first}`);
  // checked here so a bad cursor is one clear error rather than one per service
  if (args.after) parseJobCursor(args.after);
  const kinds = kindsToAsk(args);
  const request = { status: args.status ?? '', pageSize: Math.max(first, 1), pageToken: args.after ?? '' };
  const pages = await Promise.all(kinds.map((kind) => lists[kind](request)));
  const merged = pages.flatMap((p) => p.jobs).sort(compareJobsNewestFirst);
  const page = merged.slice(0, first);
  const edges = page.map((node) => ({ cursor: jobCursor(node), node }));
  return {
    edges,
    pageInfo: {
      // more after this page: jobs fetched but not shown, or a service with more past its own page
      hasNextPage: merged.length > first || pages.some((p) => p.nextPageToken !== ''),
      hasPreviousPage: Boolean(args.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: pages.reduce((n, p) => n + p.total, 0),
  };
}
