import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { parseOrder, UnitList, type UnitListConnection } from '@/components/unit-list';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import { describeError } from '@/lib/graphql-errors';
import { captureCommand } from '@/lib/recorded-hooks';

export const dynamic = 'force-dynamic';

const PAGE = 50;

const HOOK_UNITS = graphql(`
  query HookUnits($model: String!, $hook: String!, $order: UnitOrder, $first: Int, $after: String) {
    hookUnits(model: $model, hook: $hook, orderBy: $order, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        score
        node {
          ...UnitListUnit
        }
      }
    }
  }
`);

/** A hook's neurons, sortable by max activation, frequency, score or index. */
export default async function HookPage(props: {
  params: Promise<{ model: string; hook: string }>;
  searchParams: Promise<{ order?: string; after?: string }>;
}) {
  const params = await props.params;
  const model = decodeURIComponent(params.model);
  const hook = decodeURIComponent(params.hook);
  const { order: requested, after } = await props.searchParams;
  const order = parseOrder(requested);
  let list: UnitListConnection | undefined;
  try {
    list = (
      await query({
        query: HOOK_UNITS,
        variables: { model, hook, order, first: PAGE, after: after ?? null },
      })
    ).data?.hookUnits;
  } catch (error) {
    const failure = describeError(error);
    return (
      <>
        <h1>{hook}</h1>
        <ErrorBox {...failure} />
        {failure.code === 'NOT_FOUND' && /^blocks\.\d+\.mlp\.hook_post$/.test(hook) ? (
          <p className="muted capture-hint">
            Capture its records with <code>{captureCommand(model, [hook])}</code>, or start a capture job on
            the <Link href="/jobs">Jobs page</Link>.
          </p>
        ) : null}
      </>
    );
  }
  if (!list) return null;
  return (
    <>
      <h1>
        Neurons of <code>{hook}</code>
      </h1>
      <p className="muted">
        <Link href={`/models/${encodeURIComponent(model)}`}>{model}</Link>
      </p>
      <UnitList
        edges={list.edges}
        totalCount={list.totalCount}
        order={order}
        endCursor={list.pageInfo.endCursor}
        hasNextPage={list.pageInfo.hasNextPage}
      />
    </>
  );
}
