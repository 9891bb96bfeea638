import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import { describeError } from '@/lib/graphql-errors';

/** A neuron hook that a finished capture job recorded: how many neurons, and its strongest one. */
export interface RecordedHook {
  name: string;
  width: number;
  neurons: number;
  /** the neuron with the largest max activation: a good first page */
  strongest: number | null;
}

const RECORDED = graphql(`
  query RecordedHook($model: String!, $hook: String!) {
    hookUnits(model: $model, hook: $hook, orderBy: MAX_ACTIVATION, first: 1) {
      totalCount
      edges {
        node {
          index
        }
      }
    }
  }
`);

const NEURON_HOOK = /^blocks\.\d+\.mlp\.hook_post$/;

/**
 * The model's neuron hooks (blocks.{L}.mlp.hook_post) that have records, asked one hook at a time of
 * hookUnits (which answers NOT_FOUND for a hook no finished capture job recorded); in layer order.
 */
export async function recordedHooks(
  model: string,
  hooks: { name: string; width: number }[],
): Promise<RecordedHook[]> {
  const found = await Promise.all(
    hooks
      .filter((h) => NEURON_HOOK.test(h.name))
      .map(async (hook): Promise<RecordedHook | null> => {
        try {
          const list = (await query({ query: RECORDED, variables: { model, hook: hook.name } })).data
            ?.hookUnits;
          if (!list || list.totalCount === 0) return null;
          return { ...hook, neurons: list.totalCount, strongest: list.edges[0]?.node.index ?? null };
        } catch (error) {
          if (describeError(error).code === 'NOT_FOUND') return null;
          throw error;
        }
      }),
  );
  return found.filter((h) => h !== null);
}

/** The command that captures neuron records at the given hooks of a served model. */
export function captureCommand(model: string, hooks: string[]): string {
  return `npx loupe capture --model ${model} --hooks ${hooks.join(',')} --max-tokens 32768`;
}
