'use client';

import { useState } from 'react';

/**
 * Attention patterns as query × key grids, one per head. Hovering a token (a row or column label)
 * highlights its row (where it attends) and its column (what attends to it) in every grid.
 */
export function AttentionView(props: { tokens: string[]; heads: { head: number; pattern: number[][] }[] }) {
  const [focus, setFocus] = useState<number | null>(null);
  const { tokens } = props;
  return (
    <div className="attention-heads" style={{ display: 'flex', flexWrap: 'wrap', gap: '1.5em' }}>
      {props.heads.map(({ head, pattern }) => (
        <table key={head} className="attention-grid" data-head={head} style={{ borderCollapse: 'collapse' }}>
          <caption>head {head}</caption>
          <thead>
            <tr>
              <th />
              {tokens.map((t, k) => (
                <th
                  // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
                  key={k}
                  className={focus === k ? 'focus' : undefined}
                  onMouseEnter={() => setFocus(k)}
                  onMouseLeave={() => setFocus(null)}
                  style={{ fontSize: '0.7em', writingMode: 'vertical-rl' }}
                >
                  {t}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {pattern.map((row, q) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
              <tr key={q}>
                <th
                  className={focus === q ? 'focus' : undefined}
                  onMouseEnter={() => setFocus(q)}
                  onMouseLeave={() => setFocus(null)}
                  style={{ fontSize: '0.7em', textAlign: 'right' }}
                >
                  {tokens[q]}
                </th>
                {row.map((p, k) => (
                  <td
                    // biome-ignore lint/suspicious/noArrayIndexKey: position is the key
                    key={k}
                    data-p={p}
                    title={`${JSON.stringify(tokens[q])} → ${JSON.stringify(tokens[k])}: ${p.toFixed(3)}`}
                    style={{
                      width: '1.2em',
                      height: '1.2em',
                      backgroundColor: `rgba(0, 90, 220, ${p})`,
                      outline:
                        focus !== null && (focus === q || focus === k) ? '1px solid #e07b00' : undefined,
                    }}
                  />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </div>
  );
}
