/**
 * Per-unit summary of one window's activations, as the trunk's in-graph statistics (and the records
 * library's reducer) return it: one value per unit of the hook.
 */
export interface WindowReduction {
  max: Float32Array;
  min: Float32Array;
  sum: Float32Array;
  nonZero: Float32Array;
  /** the window as [unit, token], when the reducer provides it */
  columns?: Float32Array;
}
