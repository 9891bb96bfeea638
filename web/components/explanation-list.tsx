import { graphql } from '@/lib/gql';
import type { ExplanationListItemFragment } from '@/lib/gql/graphql';

export const EXPLANATION_LIST_ITEM = graphql(`
  fragment ExplanationListItem on Explanation {
    id
    text
    baseline
    explainerModel
    simulatorModel
    createdAt
    score {
      method
      value
      ciLow
      ciHigh
      topOnly
      randomOnly
      reason
      provenance {
        simulatorMethod
        recordSplit
      }
    }
  }
`);

function score(value: number | null): string {
  return value === null ? '–' : value.toFixed(3);
}

/** A unit's stored explanations, best score first, each with its score, interval and who wrote it. */
export function ExplanationList(props: { explanations: ExplanationListItemFragment[]; totalCount: number }) {
  if (props.explanations.length === 0)
    return <p className="muted">No explanations yet: score this unit from the CLI or a scoring job.</p>;
  return (
    <ol className="explanations">
      {props.explanations.map((e) => (
        <li key={e.id} className="explanation" data-explanation={e.id} data-score={e.score.value ?? ''}>
          <q>{e.text}</q>{' '}
          <span className="score" title={e.score.reason ?? undefined}>
            {e.score.method.toLowerCase()} {score(e.score.value)}
            {e.score.ciLow !== null && e.score.ciHigh !== null
              ? ` [${score(e.score.ciLow)}, ${score(e.score.ciHigh)}]`
              : ''}
            {e.score.topOnly !== null ? ` · top ${score(e.score.topOnly)}` : ''}
            {e.score.randomOnly !== null ? ` · random ${score(e.score.randomOnly)}` : ''}
            {e.score.reason ? ` (${e.score.reason})` : ''}
          </span>
          <div className="muted provenance">
            {e.baseline ? <span className="badge">baseline</span> : null} explained by{' '}
            {e.explainerModel ?? 'a person'}, {e.score.method === 'SIMULATION' ? 'simulated' : 'judged'} by{' '}
            {e.simulatorModel}
            {e.score.provenance.simulatorMethod ? (
              <span data-simulator-method={e.score.provenance.simulatorMethod}>
                {' '}
                ({e.score.provenance.simulatorMethod} simulator)
              </span>
            ) : null}
            {e.score.provenance.recordSplit ? (
              <span data-record-split={e.score.provenance.recordSplit}>
                {' '}
                on the {e.score.provenance.recordSplit} record split
              </span>
            ) : null}{' '}
            · {e.createdAt}
          </div>
        </li>
      ))}
      {props.totalCount > props.explanations.length ? (
        <li className="muted">and {props.totalCount - props.explanations.length} more</li>
      ) : null}
    </ol>
  );
}
