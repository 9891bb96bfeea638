import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { ScorePicture } from '@/components/score-picture';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { PublishedPageQuery, PublishedSearchQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { type PublishedFilter, publishedPath } from '@/lib/published';
import { unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

const PAGE = 50;
/** the paper's line between well and poorly explained neurons */
const GOOD = 0.8;

const MODELS = graphql(`
  query PublishedModels {
    models {
      edges {
        node {
          name
        }
      }
    }
  }
`);

const PUBLISHED = graphql(`
  query PublishedPage($model: String!, $layer: Int, $minScore: Float, $first: Int, $after: String) {
    publishedNeurons(model: $model, layer: $layer, minScore: $minScore, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        score
        node {
          unitId
          layer
          neuron
          bestExplanation
        }
      }
    }
    publishedScoresByLayer(model: $model, threshold: 0.8) {
      ...ScorePicture
    }
  }
`);

// the existing explanation search, narrowed to the model's (or one layer's) neurons by unit id prefix
const SEARCH = graphql(`
  query PublishedSearch($q: String!, $prefix: String!, $first: Int) {
    searchExplanations(query: $q, unitPrefix: $prefix, first: $first) {
      edges {
        relevance
        node {
          id
        }
        explanation {
          id
          text
          explainerModel
          score {
            value
          }
        }
      }
    }
  }
`);

type Hit = PublishedSearchQuery['searchExplanations']['edges'][number];

/** A number from the URL, or an error naming the parameter when it is not one. */
function parseNumber(name: string, raw: string | undefined, integer: boolean): number | undefined | Error {
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)))
    return new Error(`${name} "${raw}" is not ${integer ? 'an integer' : 'a number'}`);
  return value;
}

/**
 * OpenAI's published neurons (loupe import openai-neurons) of one model: best published score first,
 * filtered by ?layer= and ?minScore=, searched by ?q=, and the per-layer picture of their scores.
 */
export default async function PublishedPage(props: {
  searchParams: Promise<{ model?: string; layer?: string; minScore?: string; after?: string; q?: string }>;
}) {
  const params = await props.searchParams;
  const layer = parseNumber('layer', params.layer, true);
  const minScore = parseNumber('minScore', params.minScore, false);
  for (const bad of [layer, minScore])
    if (bad instanceof Error) return <ErrorBox code="BAD_USER_INPUT" message={bad.message} />;
  let models: string[];
  try {
    models = (await query({ query: MODELS })).data?.models.edges.map((e) => e.node.name) ?? [];
  } catch (error) {
    return <ErrorBox {...describeError(error)} />;
  }
  // the served model by default: the first the gateway lists
  const model = params.model || models[0];
  if (!model) return <ErrorBox code="NOT_FOUND" message="the gateway serves no model" />;
  const filter: PublishedFilter = {
    model,
    layer: layer as number | undefined,
    minScore: minScore as number | undefined,
    q: params.q || undefined,
  };
  let data: PublishedPageQuery | undefined;
  try {
    data = (
      await query({
        query: PUBLISHED,
        variables: {
          model,
          layer: filter.layer ?? null,
          minScore: filter.minScore ?? null,
          first: PAGE,
          after: params.after ?? null,
        },
      })
    ).data;
  } catch (error) {
    return (
      <>
        <h1>Published neurons</h1>
        <ErrorBox {...describeError(error)} />
      </>
    );
  }
  if (!data) return null;
  let hits: Hit[] | undefined;
  let searchFailure: { code: string; message: string } | undefined;
  if (filter.q) {
    const prefix =
      filter.layer === undefined ? `${model}/` : `${model}/blocks.${filter.layer}.mlp.hook_post/`;
    try {
      hits = (await query({ query: SEARCH, variables: { q: filter.q, prefix, first: 25 } })).data
        ?.searchExplanations.edges;
    } catch (error) {
      searchFailure = describeError(error);
    }
  }
  const list = data.publishedNeurons;
  const picture = data.publishedScoresByLayer;
  const layers = picture.layers.map((l) => l.layer);
  return (
    <>
      <h1>Published neurons</h1>
      <p className="muted">
        Neurons of <code>{model}</code> as a published dataset explains and scores them (
        <code>loupe import openai-neurons</code>), best published score first.
      </p>
      {list.totalCount === 0 && picture.layers.length === 0 ? (
        <p className="muted no-published">
          No neurons of {model} imported yet: run{' '}
          <code>loupe import openai-neurons --model {model} --layers 0-1</code>.
        </p>
      ) : null}
      <form method="get" action="/published" className="published-filter">
        <label>
          model{' '}
          <select name="model" defaultValue={model}>
            {models.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          layer{' '}
          <select name="layer" defaultValue={filter.layer === undefined ? '' : String(filter.layer)}>
            <option value="">all</option>
            {layers.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </label>{' '}
        <label>
          min score{' '}
          <input
            name="minScore"
            type="number"
            step="any"
            min={-1}
            max={1}
            defaultValue={filter.minScore ?? ''}
            placeholder="any"
          />
        </label>{' '}
        <label>
          explanation{' '}
          <input name="q" type="search" defaultValue={filter.q ?? ''} placeholder="full-text search" />
        </label>{' '}
        <button type="submit">Show</button>{' '}
        {filter.minScore === GOOD ? (
          <Link href={publishedPath({ ...filter, minScore: undefined })} className="all-scores">
            all scores
          </Link>
        ) : (
          <Link href={publishedPath({ ...filter, minScore: GOOD })} className="good-scores">
            score ≥ {GOOD}
          </Link>
        )}
      </form>
      {picture.layers.length > 0 ? (
        <ScorePicture picture={picture} href={(l) => publishedPath({ ...filter, layer: l, q: undefined })} />
      ) : null}
      {searchFailure ? <ErrorBox {...searchFailure} /> : null}
      {hits ? <SearchHits hits={hits} query={filter.q ?? ''} /> : null}
      <h2>
        {list.totalCount.toLocaleString('en')} neurons
        {filter.layer === undefined ? '' : ` of layer ${filter.layer}`}
        {filter.minScore === undefined ? '' : ` scoring ≥ ${filter.minScore}`}
      </h2>
      <div className="scroll">
        <table className="published-list">
          <thead>
            <tr>
              <th>neuron</th>
              <th>layer</th>
              <th>best score</th>
              <th>best explanation</th>
            </tr>
          </thead>
          <tbody>
            {list.edges.map(({ node, score }) => (
              <tr key={node.unitId} data-unit={node.unitId} data-score={score ?? ''}>
                <td>
                  <Link href={unitPath(node.unitId)}>{node.neuron}</Link>
                </td>
                <td>{node.layer}</td>
                <td>{score === null ? '–' : score.toFixed(3)}</td>
                <td>{node.bestExplanation ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.pageInfo.hasNextPage && list.pageInfo.endCursor ? (
        <p>
          <Link href={publishedPath({ ...filter, after: list.pageInfo.endCursor })} className="next-page">
            next {PAGE} →
          </Link>
        </p>
      ) : null}
    </>
  );
}

function SearchHits(props: { hits: Hit[]; query: string }) {
  if (props.hits.length === 0)
    return <p className="muted search-hits">No explanation matches &ldquo;{props.query}&rdquo;.</p>;
  return (
    <section className="search-hits">
      <h2>Explanations matching &ldquo;{props.query}&rdquo;</h2>
      <ol>
        {props.hits.map((hit) => (
          <li key={hit.explanation.id} data-unit={hit.node.id} data-relevance={hit.relevance}>
            <Link href={unitPath(hit.node.id)}>{hit.node.id}</Link> <q>{hit.explanation.text}</q>{' '}
            <span className="score">
              {hit.explanation.score.value === null ? '–' : hit.explanation.score.value.toFixed(3)}
            </span>{' '}
            <span className="muted">{hit.explanation.explainerModel ?? 'a person'}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
