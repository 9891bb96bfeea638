import { ApolloProvider } from '@/components/apollo-provider';
import { JobsConsole } from '@/components/jobs-console';
import { gatewayWsUrl } from '@/lib/config';

export const dynamic = 'force-dynamic';

/** Start capture and SAE training jobs and watch them live (?capture=<id> or ?training=<id> watches one). */
export default async function JobsPage(props: {
  searchParams: Promise<{ capture?: string; training?: string }>;
}) {
  const { capture, training } = await props.searchParams;
  const watched = capture
    ? { kind: 'capture' as const, id: capture }
    : training
      ? { kind: 'training' as const, id: training }
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
