import { formatValue } from '@/lib/units';

const WIDTH = 360;
const HEIGHT = 150;
/** room for the count ticks (left), the value ticks and axis label (bottom) */
const MARGIN = { top: 8, right: 12, bottom: 34, left: 44 };

/** About `count` round values (1, 2 or 5 × a power of ten apart) covering min to max. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const rough = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step)
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  return ticks;
}

/** 1, 10, 100, … up to the peak: where a log scale's gridlines go (0 is the axis itself). */
function countTicks(peak: number): number[] {
  const ticks: number[] = [];
  for (let t = 1; t <= peak; t *= 10) ticks.push(t);
  return ticks;
}

function formatCount(n: number): string {
  if (n >= 1e6) return `${n / 1e6}M`;
  if (n >= 1e3) return `${n / 1e3}k`;
  return String(n);
}

/**
 * Counts over equal bins from min to max, drawn as SVG so it renders on the server: activation value
 * along x, count along y on a log scale (a few huge bins near zero would flatten the tail that matters).
 */
export function Histogram(props: {
  counts: number[];
  min: number;
  max: number;
  label?: string;
  /** what x measures; default "activation" */
  axis?: string;
}) {
  const { counts, min, max } = props;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const peak = Math.max(1, ...counts);
  const barWidth = plotW / Math.max(1, counts.length);
  const x = (value: number) => MARGIN.left + (max > min ? ((value - min) / (max - min)) * plotW : 0);
  const y = (count: number) => MARGIN.top + plotH - (Math.log1p(count) / Math.log1p(peak)) * plotH;
  const bottom = MARGIN.top + plotH;
  return (
    <figure className="histogram">
      <svg
        width={WIDTH}
        height={HEIGHT}
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={props.label ?? 'activation histogram'}
      >
        <g className="y-axis" fontSize={10} fill="currentColor">
          {countTicks(peak).map((t) => (
            <g key={t} data-tick={t}>
              <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={y(t)} y2={y(t)} stroke="#e4e4e7" />
              <text x={MARGIN.left - 4} y={y(t) + 3} textAnchor="end">
                {formatCount(t)}
              </text>
            </g>
          ))}
          <text
            transform={`translate(10 ${MARGIN.top + plotH / 2}) rotate(-90)`}
            textAnchor="middle"
            className="axis-label"
          >
            count (log)
          </text>
        </g>
        {counts.map((count, i) => {
          const top = y(count);
          return (
            <rect
              // biome-ignore lint/suspicious/noArrayIndexKey: bins are positional
              key={i}
              x={MARGIN.left + i * barWidth}
              y={top}
              width={Math.max(1, barWidth - 1)}
              height={bottom - top}
              fill="#e07b00"
            >
              <title>{`${formatValue(min + (i * (max - min)) / counts.length)} to ${formatValue(min + ((i + 1) * (max - min)) / counts.length)}: ${count}`}</title>
            </rect>
          );
        })}
        <g className="x-axis" fontSize={10} fill="currentColor">
          <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={bottom} y2={bottom} stroke="currentColor" />
          {niceTicks(min, max).map((t) => (
            <g key={t} data-tick={t}>
              <line x1={x(t)} x2={x(t)} y1={bottom} y2={bottom + 4} stroke="currentColor" />
              <text x={x(t)} y={bottom + 14} textAnchor="middle">
                {String(Number(t.toPrecision(4)))}
              </text>
            </g>
          ))}
          <text x={MARGIN.left + plotW / 2} y={HEIGHT - 3} textAnchor="middle" className="axis-label">
            {props.axis ?? 'activation'}
          </text>
        </g>
      </svg>
      <figcaption>
        {counts.reduce((a, b) => a + b, 0).toLocaleString('en')} values in {counts.length} bins from{' '}
        {formatValue(min)} to {formatValue(max)}
      </figcaption>
    </figure>
  );
}
