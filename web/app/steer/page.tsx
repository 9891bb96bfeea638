import { ApolloProvider } from '@/components/apollo-provider';
import { SteeringPlayground } from '@/components/steering-playground';
import { query } from '@/lib/apollo';
import { gatewayWsUrl } from '@/lib/config';
import { describeError } from '@/lib/graphql-errors';
import { parseSetup, STEER, type SteerResultData, steerVariables } from '@/lib/steer-setup';

export const dynamic = 'force-dynamic';

/**
 * Steering playground. A shared URL holds the whole setup: the server renders its result on first
 * paint (and without JavaScript the form submits back here), the client component re-runs edits in place.
 */
export default async function SteerPage(props: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const setup = parseSetup(await props.searchParams);
  let result: SteerResultData | undefined;
  let error: { code: string; message: string } | undefined;
  if (setup.prompt !== '') {
    try {
      result = (await query({ query: STEER, variables: steerVariables(setup) })).data?.steer;
    } catch (failure) {
      error = describeError(failure);
    }
  }
  return (
    <>
      <h1>Steering</h1>
      <p className="muted">
        Steer with SAE features and compare with the unsteered model, same seed: ADD adds strength × the
        feature's decoder direction at every position; CLAMP sets the feature to the strength inside the SAE
        and keeps the error term; ABLATE clamps it to zero (CLAMP and ABLATE: ReLU or JumpReLU SAEs). Share
        the setup by copying the URL.
      </p>
      <ApolloProvider wsUrl={gatewayWsUrl()}>
        <SteeringPlayground initialSetup={setup} initialResult={result} initialError={error} />
      </ApolloProvider>
    </>
  );
}
