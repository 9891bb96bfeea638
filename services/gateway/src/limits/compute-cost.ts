import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLObjectType,
  type GraphQLSchema,
  getArgumentValues,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/**
 * What an operation asks of the model, counted before anything runs: every root field that runs
 * forward passes is priced in token-equivalents of forward work from its arguments (variables
 * resolved), and the operation's total must stay under a budget. The field × page cost limit cannot
 * see this (one `steer` is one field whatever its maxTokens), so 40 aliased 256-token generations passed
 * it. Text length counts in UTF-8 bytes, an upper bound on GPT-2 tokens, capped at the context.
 */
const CONTEXT_TOKENS = 1024;
/** what one output row costs beside the forward pass: fetching a hook, encoding a result's text */
const PER_HOOK = 64;
const PER_RESULT_WHY = 64;

type Args = Record<string, unknown>;

function textTokens(value: unknown): number {
  return typeof value === 'string' ? Math.min(Buffer.byteLength(value, 'utf8'), CONTEXT_TOKENS) : 0;
}
function count(value: unknown): number {
  return Array.isArray(value) ? value.length : 0;
}
function int(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, value) : fallback;
}

/** Token-equivalents of forward work per root field that runs the model (Query fields only). */
export const COMPUTE_COST: Record<string, (args: Args) => number> = {
  // two rows (steered, unsteered) over the prompt, then one token each per step; edits add clamps
  steer: (a) => {
    const options = (a.options ?? {}) as Args;
    return 2 * (textTokens(a.prompt) + int(options.maxTokens, 32)) + 16 * count(a.edits);
  },
  activations: (a) => textTokens(a.text) + PER_HOOK * count(a.hooks),
  encode: (a) => textTokens(a.text),
  tokenize: () => 0,
  // research queries, on a 12-layer model: the lens runs one row per layer; a patching sweep one row per
  // (layer, position) of a prompt of at most MAX_SWEEP_TOKENS (the capture service refuses longer), so
  // its price is linear in the prompt's bytes here
  logitLens: (a) => 12 * textTokens(a.text),
  directLogitAttribution: (a) => textTokens(a.text),
  activationPatching: (a) => 12 * textTokens(a.clean) + textTokens(a.corrupted),
  // the query, steered and plain, then each result's text encoded for "why"
  shopSearch: (a) => 2 * textTokens(a.query) + 16 * count(a.steering) + PER_RESULT_WHY * int(a.k, 10),
};

/** The operation's forward work: the sum over its root fields (aliases count each time). */
export function operationCompute(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): number {
  if (operation.operation !== 'query') return 0;
  const queryType = schema.getQueryType();
  if (!queryType) return 0;
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  let total = 0;
  for (const field of rootFields(operation.selectionSet, fragments, new Set())) {
    const price = COMPUTE_COST[field.name.value];
    if (!price) continue;
    total += price(argumentsOf(queryType, field, variables));
  }
  return total;
}

function argumentsOf(type: GraphQLObjectType, field: FieldNode, variables: Record<string, unknown>): Args {
  const definition = type.getFields()[field.name.value];
  if (!definition) return {};
  try {
    return getArgumentValues(definition, field, variables);
  } catch {
    // bad arguments are graphql-js's to report; they run nothing
    return {};
  }
}

function* rootFields(
  set: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
  seen: Set<string>,
): Generator<FieldNode> {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) yield selection;
    else if (selection.kind === Kind.INLINE_FRAGMENT)
      yield* rootFields(selection.selectionSet, fragments, seen);
    else {
      const fragment = fragments[selection.name.value];
      if (!fragment || seen.has(selection.name.value)) continue;
      yield* rootFields(fragment.selectionSet, fragments, new Set([...seen, selection.name.value]));
    }
  }
}

export function computeError(compute: number, max: number): GraphQLError | null {
  if (compute <= max) return null;
  return new GraphQLError(
    `query asks for about ${compute} tokens of model work (text length, generated tokens, edits, hooks, results); the limit is ${max} per request: send fewer or smaller operations`,
    { extensions: { code: 'QUERY_TOO_COSTLY', compute, limit: max } },
  );
}

/**
 * Apollo plugin (typed by shape, like common's metrics plugin): refuses an operation whose forward work
 * exceeds `max` before any resolver runs.
 */
export function computeLimitPlugin(max: number) {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(context: {
          schema: unknown;
          document?: unknown;
          operation?: unknown;
          request: { variables?: Record<string, unknown> };
        }) {
          if (!context.operation || !context.document) return;
          const compute = operationCompute(
            context.schema as GraphQLSchema,
            context.document as DocumentNode,
            context.operation as OperationDefinitionNode,
            context.request.variables ?? {},
          );
          const error = computeError(compute, max);
          if (error) throw error;
        },
      };
    },
  };
}
