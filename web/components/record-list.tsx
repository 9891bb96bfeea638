import { formatValue } from '@/lib/units';
import { TokenHeatmap } from './token-heatmap';

export interface RecordWindowData {
  window: number;
  maxValue: number;
  values: number[];
  tokens: { id: number; text: string }[];
}

/** Record windows as heat maps, each with its max value, all on the unit's common scale. */
export function RecordList(props: { windows: RecordWindowData[]; scale: number }) {
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
