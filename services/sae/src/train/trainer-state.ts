import ort from 'onnxruntime-node';

/**
 * Everything a trainer holds between steps, for checkpoints: completed steps, every parameter and Adam
 * moment by its graph name (copies, safe to keep across later steps), and scalar extras (BatchTopK's θ).
 */
export interface TrainerState {
  steps: number;
  tensors: Record<string, Float32Array>;
  scalars: Record<string, number>;
}

/** Copies of the live tensors, keyed by name. */
export function copyTensors(state: Record<string, ort.Tensor>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, tensor] of Object.entries(state)) out[name] = (tensor.data as Float32Array).slice();
  return out;
}

/**
 * Live tensors from saved arrays, checked against the current ones: a checkpoint from another shape
 * must fail here, not in the middle of the next step.
 */
export function restoreTensors(
  current: Record<string, ort.Tensor>,
  saved: Record<string, Float32Array>,
): Record<string, ort.Tensor> {
  const next: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(current)) {
    const values = saved[name];
    if (!values) throw new Error(`the checkpoint has no tensor ${name}`);
    if (values.length !== tensor.size)
      throw new Error(`the checkpoint's ${name} has ${values.length} values, the trainer's ${tensor.size}`);
    next[name] = new ort.Tensor('float32', values.slice(), tensor.dims);
  }
  return next;
}
