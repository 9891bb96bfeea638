import { formatValue } from '@/lib/units';

export interface HeatmapToken {
  text: string;
}

/**
 * One window of text with each token's background proportional to the unit's value there (positive in
 * orange, negative in blue), scaled by `scale` (the unit's max), so windows of one unit compare by eye.
 * Hovering a token shows its value; the values are also in data attributes for tests and copy-paste.
 */
export function TokenHeatmap(props: { tokens: HeatmapToken[]; values: number[]; scale: number }) {
  const { tokens, values, scale } = props;
  return (
    <div className="heatmap">
      {tokens.map((token, i) => {
        const value = values[i] ?? 0;
        const strength = scale > 0 ? Math.min(1, Math.abs(value) / scale) : 0;
        const colour = value >= 0 ? `rgba(255, 140, 0, ${strength})` : `rgba(30, 110, 255, ${strength})`;
        return (
          <span
            // tokens repeat within a window; their position is their identity
            // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
            key={i}
            className="token"
            style={{ backgroundColor: colour }}
            title={`${JSON.stringify(token.text)}: ${formatValue(value)}`}
            data-value={value}
          >
            {visible(token.text)}
          </span>
        );
      })}
    </div>
  );
}

/** Newlines and tabs shown as symbols so a window stays on its lines. */
function visible(text: string): string {
  return text.replaceAll('\n', '↵').replaceAll('\t', '⇥');
}
