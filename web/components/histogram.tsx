import { formatValue } from '@/lib/units';

/** Bars over equal bins from min to max, drawn as SVG so it renders on the server. */
export function Histogram(props: { counts: number[]; min: number; max: number; label?: string }) {
  const { counts, min, max } = props;
  const width = 320;
  const height = 80;
  const peak = Math.max(1, ...counts);
  const barWidth = width / Math.max(1, counts.length);
  return (
    <figure className="histogram">
      <svg width={width} height={height} role="img" aria-label={props.label ?? 'activation histogram'}>
        {counts.map((count, i) => {
          // log scale: a few huge bins near zero would flatten the tail that matters
          const h = count > 0 ? (Math.log1p(count) / Math.log1p(peak)) * (height - 2) : 0;
          return (
            <rect
              // biome-ignore lint/suspicious/noArrayIndexKey: bins are positional
              key={i}
              x={i * barWidth}
              y={height - h}
              width={Math.max(1, barWidth - 1)}
              height={h}
              fill="#e07b00"
            >
              <title>{`${formatValue(min + (i * (max - min)) / counts.length)} to ${formatValue(min + ((i + 1) * (max - min)) / counts.length)}: ${count}`}</title>
            </rect>
          );
        })}
      </svg>
      <figcaption>
        {formatValue(min)} … {formatValue(max)} (log counts)
      </figcaption>
    </figure>
  );
}
