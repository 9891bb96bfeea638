import { ApolloProvider } from '@/components/apollo-provider';
import { JobsConsole } from '@/components/jobs-console';
import { gatewayWsUrl } from '@/lib/config';

export const dynamic = 'force-dynamic';

/** Start capture, SAE training and scoring jobs and watch them live (?capture=, ?training= or ?scoring=<id>). */
export default async function JobsPage(props: {
  searchParams: Promise<{ capture?: string; training?: string; scoring?: string }>;
}) {
  const { capture, training, scoring } = await props.searchParams;
  const watched = capture
    ? { kind: 'capture' as const, id: capture }
    : training
      ? { kind: 'training' as const, id: training }
      : scoring
        ? { kind: 'scoring' as const, id: scoring }
        : undefined;
  return (
    <>
      <h1>Jobs</h1>
      <ApolloProvider wsUrl={gatewayWsUrl()}>
        <JobsConsole initialJob={watched} />
      </ApolloProvider>
    </>
  );
}
