import Link from 'next/link';
import { graphql } from '@/lib/gql';
import type { JobKind, JobListJobFragment } from '@/lib/gql/graphql';
import { scoredListPath } from '@/lib/units';

/** What the jobs table shows of each job, whatever its kind. */
export const JOB_LIST_JOB = graphql(`
  fragment JobListJob on Job {
    __typename
    id
    kind
    status
    progress
    createdAt
    error
    ... on CaptureJob {
      model
      hooks
    }
    ... on TrainingJob {
      saeId
    }
    ... on ScoringJob {
      sources
    }
  }
`);

export const JOB_KINDS = ['CAPTURE', 'TRAINING', 'SCORING'] as const satisfies readonly JobKind[];
export const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled', 'budget_exhausted'];

/** ?kind= in the URL is lowercase (capture, training, scoring); anything else is no kind. */
export function parseKind(value: string | undefined): JobKind | undefined {
  return JOB_KINDS.find((kind) => kind.toLowerCase() === value);
}

/** The URL parameter that watches a job of this kind on /jobs (what the console reads). */
const WATCH_PARAM: Record<JobKind, string> = { CAPTURE: 'capture', TRAINING: 'training', SCORING: 'scoring' };

/** What a job made, where there is a page for it: neuron lists, the SAE, the scored lists. */
function results(job: JobListJobFragment): { href: string; label: string }[] {
  if (job.__typename === 'CaptureJob')
    return job.status !== 'done'
      ? []
      : job.hooks
          .filter((hook) => /^blocks\.\d+\.mlp\.hook_post$/.test(hook))
          .map((hook) => ({
            href: `/hooks/${encodeURIComponent(job.model)}/${hook}`,
            label: `neurons of ${hook}`,
          }));
  if (job.__typename === 'TrainingJob')
    return job.saeId ? [{ href: `/saes/${encodeURIComponent(job.saeId)}`, label: `SAE ${job.saeId}` }] : [];
  if (job.__typename === 'ScoringJob')
    return job.sources.map((source) => ({ href: scoredListPath(source), label: `${source} by score` }));
  return [];
}

/** 2026-12-07T18:52:21.123456Z as 2026-12-07 18:52:21 UTC: the same on the server and in every browser. */
function shortTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/**
 * Recent jobs of every kind, newest first, filtered by kind and status through the URL (a GET form:
 * works without JavaScript); each row links to the job's live view and to what it produced.
 */
export function JobList(props: {
  jobs: JobListJobFragment[];
  totalCount: number;
  kind?: JobKind;
  status?: string;
  endCursor: string | null;
  hasNextPage: boolean;
}) {
  const filters = new URLSearchParams();
  if (props.kind) filters.set('kind', props.kind.toLowerCase());
  if (props.status) filters.set('status', props.status);
  return (
    <section className="job-list">
      <h2>Recent jobs</h2>
      <form method="get" action="/jobs" className="job-filter">
        <label>
          kind{' '}
          <select name="kind" defaultValue={props.kind?.toLowerCase() ?? ''}>
            <option value="">all</option>
            {JOB_KINDS.map((kind) => (
              <option key={kind} value={kind.toLowerCase()}>
                {kind.toLowerCase()}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          status{' '}
          <select name="status" defaultValue={props.status ?? ''}>
            <option value="">all</option>
            {JOB_STATUSES.map((status) => (
              <option key={status}>{status}</option>
            ))}
          </select>
        </label>{' '}
        <button type="submit">Filter</button>
      </form>
      <p className="muted" data-total={props.totalCount}>
        {props.totalCount.toLocaleString('en')} {props.totalCount === 1 ? 'job' : 'jobs'}
      </p>
      {props.jobs.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>kind</th>
              <th>id</th>
              <th>status</th>
              <th>progress</th>
              <th>created</th>
              <th>produced</th>
            </tr>
          </thead>
          <tbody>
            {props.jobs.map((job) => (
              <tr key={job.id} data-job-id={job.id} data-kind={job.kind} data-status={job.status}>
                <td>{job.kind.toLowerCase()}</td>
                <td>
                  <a href={`/jobs?${WATCH_PARAM[job.kind]}=${encodeURIComponent(job.id)}`}>
                    <code>{job.id.slice(0, 8)}</code>
                  </a>
                </td>
                <td title={job.error ?? undefined}>{job.status}</td>
                <td className="job-progress" data-progress={job.progress}>
                  <progress value={job.progress} max={1} /> {Math.round(100 * job.progress)}%
                </td>
                <td>
                  <time dateTime={job.createdAt}>{shortTime(job.createdAt)}</time>
                </td>
                <td className="job-produced">
                  {results(job).map((r) => (
                    <Link key={r.href} href={r.href}>
                      {r.label}
                    </Link>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {props.hasNextPage && props.endCursor ? (
        <p>
          <Link
            href={`/jobs?${filters.toString() ? `${filters}&` : ''}after=${encodeURIComponent(props.endCursor)}`}
          >
            older jobs
          </Link>
        </p>
      ) : null}
    </section>
  );
}
