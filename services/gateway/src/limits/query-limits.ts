import {
  type ASTVisitor,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValueNode,
} from 'graphql';

/**
 * Two validation rules that refuse expensive queries before any resolver runs: a depth limit and a
 * cost limit. Plain graphql-js visitors over the operation, following fragment spreads (a fragment
 * cycle is already an error of graphql-js's own rules, so here it simply stops). Introspection
 * fields (`__schema`, `__type`) are not counted: tools need them and they cost no service calls.
 */

/** Page size assumed for a list argument given as a variable or not given at all. */
export interface CostModel {
  /** cost multiplier of a connection field without `first` */
  defaultPage: number;
  /** the largest `first` (and `ids` length) the API accepts; assumed when it is a variable */
  maxPage: number;
}

type Fragments = Record<string, FragmentDefinitionNode>;

function fragmentsOf(context: ValidationContext): Fragments {
  const fragments: Fragments = {};
  for (const definition of context.getDocument().definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  return fragments;
}

/** Fields of a selection set, with fragments and inline fragments flattened. */
function* fieldsOf(set: SelectionSetNode, fragments: Fragments, seen: Set<string>): Generator<FieldNode> {
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      if (!selection.name.value.startsWith('__')) yield selection;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      yield* fieldsOf(selection.selectionSet, fragments, seen);
    } else {
      const name = selection.name.value;
      const fragment = fragments[name];
      if (!fragment || seen.has(name)) continue;
      yield* fieldsOf(fragment.selectionSet, fragments, new Set([...seen, name]));
    }
  }
}

export function queryDepth(set: SelectionSetNode, fragments: Fragments): number {
  let deepest = 0;
  for (const field of fieldsOf(set, fragments, new Set())) {
    const below = field.selectionSet ? queryDepth(field.selectionSet, fragments) : 0;
    deepest = Math.max(deepest, 1 + below);
  }
  return deepest;
}

/** How many times a field's selection runs: `first` of a connection, the length of `ids`. */
function multiplier(field: FieldNode, model: CostModel): number {
  const arg = (name: string): ValueNode | undefined =>
    field.arguments?.find((a) => a.name.value === name)?.value;
  const first = arg('first');
  if (first?.kind === Kind.INT) return Math.max(0, Number(first.value));
  if (first) return model.maxPage;
  const ids = arg('ids');
  if (ids?.kind === Kind.LIST) return ids.values.length;
  if (ids) return model.maxPage;
  // a connection field without `first` returns the default page
  return field.selectionSet?.selections.some((s) => s.kind === Kind.FIELD && s.name.value === 'edges')
    ? model.defaultPage
    : 1;
}

/** Every field costs 1 per time it runs; a field's children run once per item it returns. */
export function queryCost(set: SelectionSetNode, fragments: Fragments, model: CostModel): number {
  let cost = 0;
  for (const field of fieldsOf(set, fragments, new Set())) {
    const below = field.selectionSet ? queryCost(field.selectionSet, fragments, model) : 0;
    cost += 1 + multiplier(field, model) * below;
  }
  return cost;
}

function perOperation(
  context: ValidationContext,
  check: (operation: OperationDefinitionNode, fragments: Fragments) => GraphQLError | null,
): ASTVisitor {
  const fragments = fragmentsOf(context);
  return {
    OperationDefinition(operation) {
      const error = check(operation, fragments);
      if (error) context.reportError(error);
    },
  };
}

function depthError(operation: OperationDefinitionNode, fragments: Fragments, max: number) {
  const depth = queryDepth(operation.selectionSet, fragments);
  if (depth <= max) return null;
  return new GraphQLError(
    `query is ${depth} levels deep; the limit is ${max}: split it into several queries`,
    {
      nodes: [operation],
      extensions: { code: 'QUERY_TOO_DEEP' },
    },
  );
}

function costError(operation: OperationDefinitionNode, fragments: Fragments, max: number, model: CostModel) {
  const cost = queryCost(operation.selectionSet, fragments, model);
  if (cost <= max) return null;
  return new GraphQLError(
    `query costs ${cost} (fields × page sizes); the limit is ${max}: ask for smaller pages (first) or fewer fields`,
    { nodes: [operation], extensions: { code: 'QUERY_TOO_COSTLY' } },
  );
}

export function depthLimit(max: number) {
  return (context: ValidationContext): ASTVisitor =>
    perOperation(context, (operation, fragments) => depthError(operation, fragments, max));
}

export function costLimit(max: number, model: CostModel) {
  return (context: ValidationContext): ASTVisitor =>
    perOperation(context, (operation, fragments) => costError(operation, fragments, max, model));
}

/**
 * The same two limits over a parsed document outside graphql-js validation: subscriptions arrive over
 * graphql-ws, which validates with the standard rules only.
 */
export function limitErrors(
  document: DocumentNode,
  limits: { maxDepth: number; maxCost: number } & CostModel,
): GraphQLError[] {
  const fragments: Fragments = {};
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
  const errors: GraphQLError[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const depth = depthError(definition, fragments, limits.maxDepth);
    const cost = costError(definition, fragments, limits.maxCost, limits);
    for (const error of [depth, cost]) if (error) errors.push(error);
  }
  return errors;
}
