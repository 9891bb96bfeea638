import { AttentionView } from '@/components/attention-view';
import { ErrorBox } from '@/components/error-box';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const PATTERN = graphql(`
  query AttentionPage($text: String!, $hooks: [String!]!) {
    activations(text: $text, hooks: $hooks) {
      tokens {
        id
        text
      }
      hooks {
        hook
        shape
        tensor
      }
    }
  }
`);

/**
 * Attention patterns (blocks.L.attn.hook_pattern) set up from the URL: one head, or all heads of the
 * layer as small multiples. Rendered on the server; hovering a token (with JavaScript) shows where it
 * attends and what attends to it.
 */
export default async function AttentionPage(props: {
  searchParams: Promise<{ text?: string; layer?: string; head?: string }>;
}) {
  const params = await props.searchParams;
  const text = params.text ?? '';
  const layer = Math.max(0, Math.floor(Number(params.layer ?? 0)) || 0);
  const head =
    params.head === undefined || params.head === 'all'
      ? 'all'
      : Math.max(0, Math.floor(Number(params.head)) || 0);
  let view: { tokens: string[]; heads: number[][][] } | undefined;
  let failure: { code: string; message: string } | undefined;
  if (text) {
    try {
      const answer = (
        await query({ query: PATTERN, variables: { text, hooks: [`blocks.${layer}.attn.hook_pattern`] } })
      ).data?.activations;
      if (answer) {
        const [{ shape, tensor }] = answer.hooks;
        const [nHead, n] = shape;
        const heads = Array.from({ length: nHead }, (_, h) =>
          Array.from({ length: n }, (_, q) =>
            tensor.slice((h * n + q) * n, (h * n + q + 1) * n).map((v) => v ?? 0),
          ),
        );
        view = { tokens: answer.tokens.map((t) => t.text), heads };
      }
    } catch (error) {
      failure = describeError(error);
    }
  }
  const shown = view ? (head === 'all' ? view.heads.map((_, h) => h) : [head]) : [];
  if (view && head !== 'all' && head >= view.heads.length)
    failure = {
      code: 'BAD_USER_INPUT',
      message: `head ${head} does not exist: the layer has heads 0-${view.heads.length - 1}`,
    };
  return (
    <>
      <h1>Attention</h1>
      <p className="muted">
        Where each token (row: query) attends (column: key), from blocks.L.attn.hook_pattern. Hover a token to
        see where it attends and what attends to it.
      </p>
      <form method="get" action="/attention" className="search-form">
        <textarea name="text" rows={2} defaultValue={text} required />
        <label>
          layer <input name="layer" type="number" min={0} defaultValue={layer} />
        </label>
        <label>
          head <input name="head" defaultValue={String(head)} placeholder="all or a number" />
        </label>
        <button type="submit">Show</button>
      </form>
      {failure ? <ErrorBox {...failure} /> : null}
      {view && !failure ? (
        <AttentionView tokens={view.tokens} heads={shown.map((h) => ({ head: h, pattern: view.heads[h] }))} />
      ) : null}
    </>
  );
}
