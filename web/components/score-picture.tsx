import { graphql } from '@/lib/gql';
import type { ScorePictureFragment } from '@/lib/gql/graphql';
import { niceTicks } from './histogram';

export const SCORE_PICTURE = graphql(`
  fragment ScorePicture on PublishedScorePicture {
    edges
    threshold
    layers {
      layer
      neurons
      unscored
      mean
      atLeastThreshold
      histogram
    }
  }
`);

const HEIGHT = 220;
/** room for the score ticks (left), the layer ticks and axis label (bottom) */
const MARGIN = { top: 8, right: 12, bottom: 34, left: 44 };
/** 48 layers (GPT-2 XL) fit a laptop screen; a handful of layers do not stretch into slabs */
const COLUMN = { min: 10, max: 40, plot: 560 };

/**
 * The paper's picture of how explanation scores fall with depth, drawn as SVG so it renders on the
 * server: one column per layer, score along y, each bin shaded by the share of the layer's neurons
 * scoring in it (a violin plot flattened to a strip), the layer's mean as a dot and the threshold as a
 * dashed line. A column links to that layer's neurons.
 */
export function ScorePicture(props: { picture: ScorePictureFragment; href: (layer: number) => string }) {
  const { edges, threshold, layers } = props.picture;
  const column = Math.max(
    COLUMN.min,
    Math.min(COLUMN.max, Math.floor(COLUMN.plot / Math.max(1, layers.length))),
  );
  const plotW = column * layers.length;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const width = MARGIN.left + plotW + MARGIN.right;
  const low = edges[0] ?? -1;
  const high = edges[edges.length - 1] ?? 1;
  const y = (score: number) => MARGIN.top + ((high - score) / (high - low)) * plotH;
  const bottom = MARGIN.top + plotH;
  const layerTicks = layers.filter((_, i) => i % Math.ceil(layers.length / 12) === 0);
  return (
    <figure className="score-picture">
      <svg
        width={width}
        height={HEIGHT}
        viewBox={`0 0 ${width} ${HEIGHT}`}
        role="img"
        aria-label="published scores by layer"
      >
        <g className="y-axis" fontSize={10} fill="currentColor">
          {niceTicks(low, high, 4).map((t) => (
            <g key={t} data-tick={t}>
              <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={y(t)} y2={y(t)} stroke="#e4e4e7" />
              <text x={MARGIN.left - 4} y={y(t) + 3} textAnchor="end">
                {String(t)}
              </text>
            </g>
          ))}
          <text
            transform={`translate(10 ${MARGIN.top + plotH / 2}) rotate(-90)`}
            textAnchor="middle"
            className="axis-label"
          >
            best score
          </text>
        </g>
        {layers.map((l, i) => {
          const peak = Math.max(1, ...l.histogram);
          const x = MARGIN.left + i * column;
          return (
            <a key={l.layer} href={props.href(l.layer)} className="layer-column">
              <g
                data-layer={l.layer}
                data-neurons={l.neurons}
                data-unscored={l.unscored}
                data-mean={l.mean ?? ''}
                data-at-least={l.atLeastThreshold}
              >
                <title>{`layer ${l.layer}: ${l.neurons} neurons, mean ${l.mean === null ? '–' : l.mean.toFixed(3)}, ${l.atLeastThreshold} scoring ≥ ${threshold}`}</title>
                {l.histogram.map((count, bin) => (
                  <rect
                    // biome-ignore lint/suspicious/noArrayIndexKey: bins are positional
                    key={bin}
                    data-bin={bin}
                    data-count={count}
                    x={x + 1}
                    y={y(edges[bin + 1] ?? high)}
                    width={column - 2}
                    height={Math.max(0, y(edges[bin] ?? low) - y(edges[bin + 1] ?? high))}
                    fill="#e07b00"
                    fillOpacity={count === 0 ? 0 : 0.15 + 0.85 * (count / peak)}
                  />
                ))}
                {l.mean === null ? null : (
                  <circle cx={x + column / 2} cy={y(l.mean)} r={Math.min(4, column / 3)} fill="#1f2937" />
                )}
              </g>
            </a>
          );
        })}
        <line
          className="threshold"
          x1={MARGIN.left}
          x2={MARGIN.left + plotW}
          y1={y(threshold)}
          y2={y(threshold)}
          stroke="#2563eb"
          strokeDasharray="4 3"
        />
        <g className="x-axis" fontSize={10} fill="currentColor">
          <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={bottom} y2={bottom} stroke="currentColor" />
          {layerTicks.map((l) => {
            const x = MARGIN.left + (layers.indexOf(l) + 0.5) * column;
            return (
              <text key={l.layer} x={x} y={bottom + 14} textAnchor="middle">
                {l.layer}
              </text>
            );
          })}
          <text x={MARGIN.left + plotW / 2} y={HEIGHT - 3} textAnchor="middle" className="axis-label">
            layer
          </text>
        </g>
      </svg>
      <figcaption>
        Best published score of each layer&apos;s neurons: shade is the share of the layer in each score bin,
        the dot its mean, the dashed line {threshold}.{' '}
        {layers.reduce((a, l) => a + l.atLeastThreshold, 0).toLocaleString('en')} of{' '}
        {layers.reduce((a, l) => a + l.neurons, 0).toLocaleString('en')} neurons score ≥ {threshold}.
      </figcaption>
    </figure>
  );
}
