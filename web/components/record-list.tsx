import { graphql } from '@/lib/gql';
import type { WindowFieldsFragment } from '@/lib/gql/graphql';
import { formatValue } from '@/lib/units';
import { TokenHeatmap } from './token-heatmap';

export const WINDOW_FIELDS = graphql(`
  fragment WindowFields on RecordWindow {
    window
    maxValue
    values
    tokens {
      id
      text
    }
  }
`);

/** Record windows as heat maps, each with its max value, all on the unit's common scale. */
export function RecordList(props: { windows: WindowFieldsFragment[]; scale: number }) {
  if (props.windows.length === 0) return <p className="muted">No windows.</p>;
  return (
    <ol className="records">
      {props.windows.map((w) => (
        <li key={w.window} className="window" data-window={w.window}>
          <span className="max">{formatValue(w.maxValue)}</span>
          <TokenHeatmap tokens={w.tokens} values={w.values} scale={props.scale} />
        </li>
      ))}
    </ol>
  );
}
