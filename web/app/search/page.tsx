import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { TokenHeatmap } from '@/components/token-heatmap';
import { query } from '@/lib/apollo';
import { type EncodingData, featureValues } from '@/lib/encoding';
import { graphql } from '@/lib/gql';
import type { SearchExplanationsQuery, SearchSaesQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { formatValue, unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

/** Per-token features asked for: the gateway's maximum, so a TopK SAE's every firing feature is listed. */
const PER_TOKEN = 64;
const TOP = 20;

type ExplanationHit = SearchExplanationsQuery['searchExplanations']['edges'][number];

const SEARCH_EXPLANATIONS = graphql(`
  query SearchExplanations($q: String!, $first: Int) {
    searchExplanations(query: $q, first: $first) {
      edges {
        relevance
        node {
          id
        }
        explanation {
          id
          text
          baseline
          score {
            method
            value
          }
        }
      }
    }
  }
`);

const SAES = graphql(`
  query SearchSaes {
    saes(first: 100) {
      edges {
        node {
          id
          model
          hook
        }
      }
    }
  }
`);

const ENCODE = graphql(`
  query SearchEncode($text: String!, $saeId: ID!, $perToken: Int, $top: Int) {
    encode(text: $text, saeId: $saeId, perToken: $perToken, top: $top) {
      sae {
        k
      }
      tokens {
        token {
          id
          text
        }
        l0
        features {
          value
          feature {
            id
            index
          }
        }
      }
      top {
        maxValue
        tokens
        maxPosition
        feature {
          id
          index
        }
      }
    }
  }
`);

/** "Paste text, see which units fire": a GET form (works without JavaScript) and the SAE's answer. */
export default async function SearchPage(props: {
  searchParams: Promise<{ sae?: string; text?: string; q?: string }>;
}) {
  const { sae: chosen, text, q } = await props.searchParams;
  let saes: SearchSaesQuery['saes']['edges'];
  try {
    saes = (await query({ query: SAES })).data?.saes.edges ?? [];
  } catch (error) {
    return (
      <>
        <h1>Search</h1>
        <ErrorBox {...describeError(error)} />
      </>
    );
  }
  const saeId = chosen ?? saes[0]?.node.id;
  let encoding: EncodingData | undefined;
  let failure: { code: string; message: string } | undefined;
  if (text && saeId) {
    try {
      encoding = (
        await query({
          query: ENCODE,
          variables: { text, saeId, perToken: PER_TOKEN, top: TOP },
        })
      ).data?.encode;
    } catch (error) {
      failure = describeError(error);
    }
  }
  let hits: ExplanationHit[] | undefined;
  let searchFailure: { code: string; message: string } | undefined;
  if (q) {
    try {
      hits = (await query({ query: SEARCH_EXPLANATIONS, variables: { q, first: 25 } })).data
        ?.searchExplanations.edges;
    } catch (error) {
      searchFailure = describeError(error);
    }
  }
  return (
    <>
      <h1>Search explanations</h1>
      <form method="get" action="/search" className="explanation-search">
        <input
          name="q"
          type="search"
          defaultValue={q ?? ''}
          placeholder="e.g. numbers, French words"
          required
        />{' '}
        <button type="submit">Search</button>
      </form>
      {searchFailure ? <ErrorBox {...searchFailure} /> : null}
      {hits ? <ExplanationHitList hits={hits} /> : null}
      <h1>Which features fire on this text?</h1>
      {saes.length === 0 ? (
        <p className="muted">No SAEs yet: train one on the Jobs page or import one with the CLI.</p>
      ) : (
        <form method="get" action="/search" className="search-form">
          <label>
            SAE{' '}
            <select name="sae" defaultValue={saeId}>
              {saes.map(({ node }) => (
                <option key={node.id} value={node.id}>
                  {node.id} ({node.model}, {node.hook})
                </option>
              ))}
            </select>
          </label>
          <textarea name="text" rows={4} defaultValue={text ?? ''} placeholder="Paste text here" required />
          <button type="submit">Encode</button>
        </form>
      )}
      {failure ? <ErrorBox {...failure} /> : null}
      {encoding ? <EncodingView encoding={encoding} /> : null}
    </>
  );
}

function EncodingView(props: { encoding: EncodingData }) {
  const { encoding } = props;
  const scale = Math.max(0, ...encoding.top.map((t) => t.maxValue));
  // a token's summed activation over its listed features (every firing one up to PER_TOKEN): L0 alone is
  // the same k at every token of a TopK SAE, so it would shade nothing
  const sums = encoding.tokens.map((t) => t.features.reduce((sum, f) => sum + f.value, 0));
  const largest = Math.max(0, ...sums);
  const smallest = Math.min(largest, ...sums);
  // lightest to darkest over the text's own range, so the differences between tokens show
  const shade = (sum: number) =>
    largest > smallest ? 0.08 + (0.62 * (sum - smallest)) / (largest - smallest) : largest > 0 ? 0.4 : 0;
  const l0s = new Set(encoding.tokens.map((t) => t.l0));
  return (
    <section className="encoding">
      <h2>Tokens</h2>
      <p className="muted">
        Each token shaded by the summed activation of its firing features, from {formatValue(smallest)}{' '}
        (lightest) to {formatValue(largest)} (darkest); hover for its L0 (how many features fire) and its
        strongest features.
        {l0s.size === 1 && encoding.tokens.length > 1
          ? ` Every token has L0 ${encoding.tokens[0].l0}${encoding.sae.k ? ' (a TopK SAE keeps exactly k)' : ''}.`
          : null}
      </p>
      <div className="heatmap tokens-l0">
        {encoding.tokens.map((t, i) => (
          <span
            // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
            key={i}
            className="token"
            data-l0={t.l0}
            data-sum={sums[i]}
            style={{ backgroundColor: `rgba(224, 123, 0, ${shade(sums[i])})` }}
            title={`L0 ${t.l0} · sum ${formatValue(sums[i])}: ${t.features
              .slice(0, 5)
              .map((f) => `#${f.feature.index} ${formatValue(f.value)}`)
              .join(', ')}`}
          >
            {t.token.text.replaceAll('\n', '↵')}
          </span>
        ))}
      </div>
      <h2>Top features</h2>
      <ol className="top-features">
        {encoding.top.map((s) => (
          <li key={s.feature.id} className="window" data-feature={s.feature.id}>
            <Link href={unitPath(s.feature.id)} className="feature-link">
              #{s.feature.index}
            </Link>{' '}
            <span className="max">
              max {formatValue(s.maxValue)} · {s.tokens} {s.tokens === 1 ? 'token' : 'tokens'}
            </span>
            <TokenHeatmap
              tokens={encoding.tokens.map((t) => t.token)}
              values={featureValues(encoding, s.feature.id)}
              scale={scale}
            />
          </li>
        ))}
      </ol>
    </section>
  );
}

function ExplanationHitList(props: { hits: ExplanationHit[] }) {
  if (props.hits.length === 0) return <p className="muted">No explanation matches.</p>;
  return (
    <ol className="explanation-hits">
      {props.hits.map((hit) => (
        <li key={hit.explanation.id} data-unit={hit.node.id} data-explanation={hit.explanation.id}>
          <Link href={unitPath(hit.node.id)}>{hit.node.id}</Link> <q>{hit.explanation.text}</q>{' '}
          <span className="muted">
            {hit.explanation.score.method.toLowerCase()}{' '}
            {hit.explanation.score.value === null ? '–' : hit.explanation.score.value.toFixed(3)}
            {hit.explanation.baseline ? ' · baseline' : ''}
          </span>
        </li>
      ))}
    </ol>
  );
}
