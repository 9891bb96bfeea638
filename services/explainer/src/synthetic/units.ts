import { Rng } from '@loupe/common';
import type { ActivationRecord, UnitRecords } from '../records/records.js';

// A small English-like vocabulary: enough distinct tokens that a one-token unit is rare in random text.
const WORDS =
  ' the a of and to in is was he she it that for on with as his her at by from they we this had not but are or an be one all were there said what when will your which their time if out up about so into them some could him then two more these like other see now way only its made may over new down after also did many before must through back years where much good well'.split(
    ' ',
  );
const VOCABULARY = WORDS.slice(1).map((w) => ` ${w}`);

export interface SyntheticUnitOptions {
  seed: number;
  /** The token the unit fires on; undefined makes a unit whose activations ignore the text. */
  firesOn?: string;
  records?: number;
  length?: number;
}

/**
 * Records of a synthetic unit, for tests and benchmarks: random text from a fixed vocabulary; top records
 * hold the firing token a few times, random records rarely. A unit with `firesOn` has activation ~N(5,1)
 * on that token and small noise elsewhere, so a correct explanation must score high; without it the
 * activations are noise, so any explanation must score near 0.
 */
export function syntheticUnit(options: SyntheticUnitOptions): UnitRecords {
  const rng = Rng.derive(options.seed, `synthetic:${options.firesOn ?? 'noise'}`);
  const count = options.records ?? 20;
  const length = options.length ?? 24;
  const pick = () => VOCABULARY[rng.nextUint32() % VOCABULARY.length];
  const window = (id: string, plants: number): ActivationRecord => {
    const tokens = Array.from({ length }, pick);
    if (options.firesOn) for (let k = 0; k < plants; k++) tokens[rng.nextUint32() % length] = options.firesOn;
    const activations = tokens.map((t) =>
      options.firesOn === undefined
        ? Math.abs(rng.nextNormal())
        : t === options.firesOn
          ? 5 + rng.nextNormal()
          : Math.max(0, 0.05 * rng.nextNormal()),
    );
    return { id, tokens, activations };
  };
  return {
    top: Array.from({ length: count }, (_, i) => window(`top:${i}`, 1 + (rng.nextUint32() % 3))),
    random: Array.from({ length: count }, (_, i) =>
      window(`random:${i}`, rng.nextUint32() % 8 === 0 ? 1 : 0),
    ),
  };
}
