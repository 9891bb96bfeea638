import { Rng } from '@loupe/common';

/** A hidden dictionary and a generator of sparse combinations of it, for tests with a known answer. */
export interface SparseDictionary {
  d: number;
  size: number;
  /** [size, d] unit rows */
  directions: Float32Array;
}

export function randomDictionary(d: number, size: number, seed: number): SparseDictionary {
  const rng = Rng.derive(seed, 'synthetic/dictionary');
  const directions = new Float32Array(size * d);
  for (let i = 0; i < size; i++) {
    const v = rng.normalFloat32(d, 0, 1);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    for (let j = 0; j < d; j++) directions[i * d + j] = v[j] / norm;
  }
  return { d, size, directions };
}

export interface SparseMixSettings {
  /** each direction is active independently with this probability, so about size·p per vector */
  activeProbability: number;
  /** coefficients are uniform in [min, max] */
  coefficientMin: number;
  coefficientMax: number;
  /** std of isotropic Gaussian noise added to every coordinate */
  noiseStd: number;
}

/** Draws batches x = Σ c_i f_i + noise from one seeded stream. */
export class SparseMixSource {
  private readonly rng: Rng;

  constructor(
    readonly dictionary: SparseDictionary,
    private readonly settings: SparseMixSettings,
    seed: number,
  ) {
    this.rng = Rng.derive(seed, 'synthetic/mix');
  }

  batch(rows: number): Float32Array {
    const { d, size, directions } = this.dictionary;
    const { activeProbability, coefficientMin, coefficientMax, noiseStd } = this.settings;
    const out = new Float32Array(rows * d);
    const acc = new Float64Array(d);
    for (let r = 0; r < rows; r++) {
      acc.fill(0);
      // Geometric skipping draws the same Bernoulli(p) pattern as testing each direction, at the cost
      // of one uniform per active direction instead of one per direction.
      const logKeep = Math.log1p(-activeProbability);
      for (let i = Math.floor(Math.log(this.rng.nextUniform()) / logKeep); i < size; ) {
        const c = coefficientMin + (coefficientMax - coefficientMin) * this.rng.nextUniform();
        for (let j = 0; j < d; j++) acc[j] += c * directions[i * d + j];
        i += 1 + Math.floor(Math.log(this.rng.nextUniform()) / logKeep);
      }
      for (let j = 0; j < d; j++) out[r * d + j] = acc[j] + noiseStd * this.rng.nextNormal();
    }
    return out;
  }
}

/**
 * For each hidden direction, the best cosine similarity with any decoder row ([m, d], any norm). The
 * fraction of these above a threshold is the recovery figure.
 */
export function bestCosines(dictionary: SparseDictionary, decoder: Float32Array, m: number): Float64Array {
  const { d, size, directions } = dictionary;
  const norms = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += decoder[r * d + j] ** 2;
    norms[r] = Math.sqrt(s) || 1;
  }
  const best = new Float64Array(size).fill(-1);
  for (let i = 0; i < size; i++) {
    for (let r = 0; r < m; r++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += directions[i * d + j] * decoder[r * d + j];
      const cos = dot / norms[r];
      if (cos > best[i]) best[i] = cos;
    }
  }
  return best;
}

/**
 * The known-answer benchmark the training tests share: 512 hidden unit directions in `d` dimensions,
 * about 4 active per vector with coefficients in [0.5, 1.5], noise std 0.01.
 */
export function syntheticBenchmark(d = 64): { dictionary: SparseDictionary; source: SparseMixSource } {
  const dictionary = randomDictionary(d, 512, 1);
  const source = new SparseMixSource(
    dictionary,
    { activeProbability: 4 / 512, coefficientMin: 0.5, coefficientMax: 1.5, noiseStd: 0.01 },
    2,
  );
  return { dictionary, source };
}
