import { graphqlDuration } from './registry.js';

/**
 * An Apollo Server plugin (typed by shape, so common needs no Apollo dependency) that times every
 * GraphQL operation into loupe_graphql_duration_seconds, labelled by operation name and type.
 */
export interface GraphqlRequestContext {
  operationName?: string | null;
  operation?: { operation: string } | null;
  errors?: readonly unknown[];
}

/** Operation names are chosen by clients: beyond this many distinct ones, they count as "other". */
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const seen = new Set<string>();

function operationLabel(name: string | null | undefined): string {
  if (!name || !OPERATION_NAME.test(name)) return 'anonymous';
  if (seen.has(name)) return name;
  if (seen.size >= MAX_OPERATION_NAMES) return 'other';
  seen.add(name);
  return name;
}

export function graphqlMetricsPlugin() {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse(context: GraphqlRequestContext) {
          graphqlDuration.observe(
            {
              operation: operationLabel(context.operationName),
              type: context.operation?.operation ?? 'invalid',
              outcome: context.errors?.length ? 'error' : 'ok',
            },
            Number(process.hrtime.bigint() - started) / 1e9,
          );
        },
      };
    },
  };
}
