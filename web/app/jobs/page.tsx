import type { ReactNode } from 'react';
import { ApolloProvider } from '@/components/apollo-provider';
import { ErrorBox } from '@/components/error-box';
import { JobList, parseKind } from '@/components/job-list';
import { JobsConsole } from '@/components/jobs-console';
import { query } from '@/lib/apollo';
import { gatewayWsUrl } from '@/lib/config';
import { graphql } from '@/lib/gql';
import type { JobKind } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const PAGE = 25;

const JOBS = graphql(`
  query Jobs($kind: JobKind, $status: String, $first: Int, $after: String) {
    jobs(kind: $kind, status: $status, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...JobListJob
        }
      }
    }
  }
`);

/**
 * Recent jobs (?kind=, ?status=, ?after=), the forms that start jobs (?units= fills in the scoring
 * form), and one job watched live (?capture=, ?training= or ?scoring=<id>).
 */
export default async function JobsPage(props: {
  searchParams: Promise<{
    capture?: string;
    training?: string;
    scoring?: string;
    kind?: string;
    status?: string;
    after?: string;
    units?: string;
  }>;
}) {
  const { capture, training, scoring, units, ...filter } = await props.searchParams;
  const watched = capture
    ? { kind: 'capture' as const, id: capture }
    : training
      ? { kind: 'training' as const, id: training }
      : scoring
        ? { kind: 'scoring' as const, id: scoring }
        : undefined;
  const kind = parseKind(filter.kind);
  const status = filter.status || undefined;
  const list: ReactNode =
    filter.kind && !kind ? (
      <ErrorBox
        code="BAD_USER_INPUT"
        message={`kind "${filter.kind}" is not a job kind: use capture, training or scoring`}
      />
    ) : (
      await recentJobs(kind, status, filter.after)
    );
  return (
    <>
      <h1>Jobs</h1>
      {list}
      <ApolloProvider wsUrl={gatewayWsUrl()}>
        <JobsConsole initialJob={watched} scoreUnits={units} />
      </ApolloProvider>
    </>
  );
}

async function recentJobs(kind: JobKind | undefined, status: string | undefined, after: string | undefined) {
  try {
    const jobs = (
      await query({
        query: JOBS,
        variables: { kind: kind ?? null, status: status ?? null, first: PAGE, after: after ?? null },
      })
    ).data?.jobs;
    if (!jobs) return null;
    return (
      <JobList
        jobs={jobs.edges.map((e) => e.node)}
        totalCount={jobs.totalCount}
        kind={kind}
        status={status}
        endCursor={jobs.pageInfo.endCursor ?? null}
        hasNextPage={jobs.pageInfo.hasNextPage}
      />
    );
  } catch (error) {
    return <ErrorBox {...describeError(error)} />;
  }
}
