import type { ActivationRecord } from '../records/records.js';

/**
 * Few-shot examples written for Loupe (not copied from any published prompt). Each pairs records with
 * the one-sentence explanation we would want, and they deliberately differ in kind: a single token, a
 * context-dependent pattern, and sparse firing inside long text.
 */
export interface FewShotExample {
  records: ActivationRecord[];
  explanation: string;
}

const record = (id: string, pairs: [string, number][]): ActivationRecord => ({
  id,
  tokens: pairs.map(([t]) => t),
  activations: pairs.map(([, a]) => a),
});

export const FEW_SHOT_EXAMPLES: FewShotExample[] = [
  {
    explanation: 'units of time such as minutes, hours and days, especially after a number.',
    records: [
      record('example-1a', [
        ['The', 0],
        [' train', 0],
        [' left', 0],
        [' two', 0.4],
        [' hours', 8.1],
        [' late', 0.2],
      ]),
      record('example-1b', [
        ['Wait', 0],
        [' five', 0.3],
        [' minutes', 7.5],
        [' and', 0],
        [' a', 0],
        [' few', 0],
        [' days', 5.2],
      ]),
    ],
  },
  {
    explanation: 'closing quotation marks that end a line of dialogue.',
    records: [
      record('example-2a', [
        ['"', 0],
        ['Come', 0],
        [' in', 0],
        [',"', 9.0],
        [' she', 1.1],
        [' said', 0],
        ['.', 0],
      ]),
      record('example-2b', [
        ['He', 0],
        [' asked', 0],
        [',', 0],
        [' "', 0],
        ['Why', 0],
        ['?"', 6.3],
      ]),
    ],
  },
  {
    explanation: 'the word "river" and names of rivers.',
    records: [
      record('example-3a', [
        ['We', 0],
        [' walked', 0],
        [' along', 0],
        [' the', 0],
        [' river', 6.8],
        [' bank', 0.9],
        [' until', 0],
        [' dusk', 0],
        [' and', 0],
        [' then', 0],
        [' went', 0],
        [' home', 0],
      ]),
      record('example-3b', [
        ['Boats', 0],
        [' on', 0],
        [' the', 0],
        [' Thames', 7.7],
        [' and', 0],
        [' the', 0],
        [' Danube', 8.0],
        [' are', 0],
        [' common', 0],
        [' in', 0],
        [' summer', 0],
        ['.', 0],
      ]),
    ],
  },
];
