import { ApolloProvider } from '@/components/apollo-provider';
import { SteeringPlayground } from '@/components/steering-playground';
import { query } from '@/lib/apollo';
import { gatewayWsUrl } from '@/lib/config';
import { describeError } from '@/lib/graphql-errors';
import {
  FEATURE_SUGGESTIONS,
  type FeatureChoice,
  parseSetup,
  pickerSae,
  STEER,
  STEER_START,
  type SteerResultData,
  type SteerSetup,
  SUGGESTED_FEATURES,
  steerable,
  steerVariables,
  toPicks,
} from '@/lib/steer-setup';

export const dynamic = 'force-dynamic';

/**
 * Where the picker starts: the steerable SAEs, the SAE of the setup's feature or else the demo
 * workspace's, and that SAE's best-scored features. Undefined when there is no steerable SAE or the
 * gateway cannot say (the playground still works with ids typed by hand).
 */
async function pickerStart(
  setup: SteerSetup,
): Promise<
  | { saes: { id: string; model: string; hook: string }[]; initialSae: string; initialPicks: FeatureChoice[] }
  | undefined
> {
  try {
    const start = (await query({ query: STEER_START })).data;
    const saes = (start?.saes.edges ?? []).map((e) => e.node).filter(steerable);
    const sae = pickerSae(setup, saes, start?.workspace?.sae?.id ?? null);
    if (!sae) return undefined;
    const suggested = await query({
      query: FEATURE_SUGGESTIONS,
      variables: { saeId: sae.id, first: SUGGESTED_FEATURES },
    }).then(
      (answer) => toPicks((answer.data?.saeFeatures.edges ?? []).map((e) => e.node)),
      () => [], // an SAE without feature records lists no features; its ids can still be typed
    );
    return { saes, initialSae: sae.id, initialPicks: suggested };
  } catch {
    return undefined;
  }
}

/**
 * Steering playground. A shared URL holds the whole setup: the server renders its result on first
 * paint (and without JavaScript the form submits back here), the client component re-runs edits in place.
 */
export default async function SteerPage(props: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const setup = parseSetup(await props.searchParams);
  const picker = pickerStart(setup);
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
        and keeps the error term; ABLATE clamps it to zero (CLAMP and ABLATE: ReLU or JumpReLU SAEs). Pick
        features by searching their explanations, or open one with “steer with it” on its page. Share the
        setup by copying the URL.
      </p>
      <ApolloProvider wsUrl={gatewayWsUrl()}>
        <SteeringPlayground
          initialSetup={setup}
          initialResult={result}
          initialError={error}
          picker={await picker}
        />
      </ApolloProvider>
    </>
  );
}
