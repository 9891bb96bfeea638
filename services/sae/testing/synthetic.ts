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
  /**
   * Zipf exponent of the firing frequencies: direction i fires with probability ∝ (i + 1)^−skew, scaled
   * so the mean is still `activeProbability` (capped at 1). 0 or absent: all equally frequent.
   */
  frequencySkew?: number;
  /** a constant vector added to every row, which an SAE's b_dec must learn */
  offset?: Float32Array;
}

/** Draws batches x = Σ c_i f_i + noise from one seeded stream. */
export class SparseMixSource {
  private readonly rng: Rng;
  /** per-direction firing probabilities, when skewed */
  readonly probabilities?: Float64Array;

  constructor(
    readonly dictionary: SparseDictionary,
    private readonly settings: SparseMixSettings,
    seed: number,
  ) {
    this.rng = Rng.derive(seed, 'synthetic/mix');
    const skew = settings.frequencySkew ?? 0;
    if (skew > 0) {
      const weights = Float64Array.from({ length: dictionary.size }, (_, i) => (i + 1) ** -skew);
      const mean = weights.reduce((a, b) => a + b, 0) / weights.length;
      this.probabilities = weights.map((w) => Math.min(1, (w / mean) * settings.activeProbability));
    }
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
      const add = (i: number) => {
        const c = coefficientMin + (coefficientMax - coefficientMin) * this.rng.nextUniform();
        for (let j = 0; j < d; j++) acc[j] += c * directions[i * d + j];
      };
      if (this.probabilities) {
        for (let i = 0; i < size; i++) if (this.rng.nextUniform() < (this.probabilities[i] as number)) add(i);
      } else {
        const logKeep = Math.log1p(-activeProbability);
        for (let i = Math.floor(Math.log(this.rng.nextUniform()) / logKeep); i < size; ) {
          add(i);
          i += 1 + Math.floor(Math.log(this.rng.nextUniform()) / logKeep);
        }
      }
      const offset = this.settings.offset;
      for (let j = 0; j < d; j++)
        out[r * d + j] = acc[j] + noiseStd * this.rng.nextNormal() + (offset ? offset[j] : 0);
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

/**
 * A case built for feature absorption (Chanin et al. 2024): a parent direction and children that imply
 * it. Every vector draws the independent directions of `background` as SparseMixSource does; besides,
 * the parent fires with `parentProbability`, and when it fires one of the children fires with it with
 * `childProbability`. Row 0 of `directions` is the parent, rows 1..children the children.
 */
export class HierarchySource {
  private readonly rng: Rng;
  private readonly background: SparseMixSource;
  readonly hierarchy: SparseDictionary;

  constructor(
    d: number,
    readonly children: number,
    private readonly settings: { parentProbability: number; childProbability: number },
    backgroundDictionary: SparseDictionary,
    backgroundSettings: SparseMixSettings,
    seed: number,
  ) {
    this.rng = Rng.derive(seed, 'synthetic/hierarchy');
    this.hierarchy = randomDictionary(d, children + 1, seed + 1);
    this.background = new SparseMixSource(backgroundDictionary, backgroundSettings, seed + 2);
  }

  /** Rows, and per row which child fired (−1: the parent alone, −2: no parent). */
  batch(rows: number): { data: Float32Array; child: Int32Array } {
    const { d, directions } = this.hierarchy;
    const data = this.background.batch(rows);
    const child = new Int32Array(rows).fill(-2);
    for (let r = 0; r < rows; r++) {
      if (this.rng.nextUniform() >= this.settings.parentProbability) continue;
      const parent = 0.5 + this.rng.nextUniform();
      for (let j = 0; j < d; j++) data[r * d + j] += parent * directions[j];
      child[r] = -1;
      if (this.rng.nextUniform() < this.settings.childProbability) {
        const c = 1 + Math.floor(this.rng.nextUniform() * this.children);
        const coefficient = 0.5 + this.rng.nextUniform();
        for (let j = 0; j < d; j++) data[r * d + j] += coefficient * directions[c * d + j];
        child[r] = c - 1;
      }
    }
    return { data, child };
  }
}
