import { ErrorBox } from '@/components/error-box';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { LensPageQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const LENS = graphql(`
  query LensPage($text: String!, $token: String) {
    logitLens(text: $text, token: $token, top: 3) {
      tokens {
        id
        text
      }
      token {
        id
        token
      }
      cells {
        top {
          id
          token
          probability
        }
        rank
        probability
      }
    }
  }
`);

/** The logit lens as a layer × position table of top tokens, set up from the URL (?text=&token=). */
export default async function LensPage(props: { searchParams: Promise<{ text?: string; token?: string }> }) {
  const { text, token } = await props.searchParams;
  let lens: LensPageQuery['logitLens'] | undefined;
  let failure: { code: string; message: string } | undefined;
  if (text) {
    try {
      lens = (await query({ query: LENS, variables: { text, token: token || null } })).data?.logitLens;
    } catch (error) {
      failure = describeError(error);
    }
  }
  return (
    <>
      <h1>Logit lens</h1>
      <p className="muted">
        What each layer already predicts: every layer's residual stream (hook_resid_post) read through the
        final LayerNorm and the unembedding. Each cell shows the top token and its probability; with a token
        to follow, its rank (0 = top) too.
      </p>
      <form method="get" action="/lens" className="search-form">
        <textarea
          name="text"
          rows={2}
          defaultValue={text ?? ''}
          placeholder="The capital of France is"
          required
        />
        <input name="token" defaultValue={token ?? ''} placeholder="token to follow, e.g. ' Paris'" />
        <button type="submit">Run</button>
      </form>
      {failure ? <ErrorBox {...failure} /> : null}
      {lens ? (
        <table className="lens-table">
          <thead>
            <tr>
              <th>layer</th>
              {lens.tokens.map((t, p) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
                <th key={p}>{t.text}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {lens.cells.map((row, layer) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: layer is the key
              <tr key={layer} data-layer={layer}>
                <th>{layer}</th>
                {row.map((cell, p) => (
                  <td
                    // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
                    key={p}
                    data-top={cell.top[0]?.id}
                    data-rank={cell.rank ?? undefined}
                    title={cell.top
                      .map((t) => `${JSON.stringify(t.token)} ${t.probability.toFixed(3)}`)
                      .join('\n')}
                    style={{ backgroundColor: `rgba(0, 110, 200, ${(cell.top[0]?.probability ?? 0) * 0.8})` }}
                  >
                    {cell.top[0]?.token} <small>{cell.top[0]?.probability.toFixed(2)}</small>
                    {cell.rank !== null && cell.rank !== undefined ? <small> · #{cell.rank}</small> : null}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}
