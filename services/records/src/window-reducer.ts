import { GraphBuilder } from '@loupe/common';
import type { WindowReduction } from '@loupe/model';
import { openSession, type RuntimeSession, type SessionSettings } from '@loupe/model';
import ort from 'onnxruntime-node';

/**
 * Per-neuron max, min, sum and non-zero count over the tokens of many equally long windows, and each
 * window transposed to [neuron, token], in one ONNX Runtime call: the tokens × neurons work that
 * dominated capture when written as JavaScript loops.
 */
export class WindowReducer {
  private constructor(private readonly session: RuntimeSession) {}

  /**
   * `columns: false` leaves out the transposed copy, the costliest output (a full pass writing every
   * value): callers that copy a window's column only when it enters a top-k list read it strided.
   */
  static async create(
    settings: SessionSettings,
    options: { columns?: boolean } = {},
  ): Promise<WindowReducer> {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['windows', 'tokens', 'width']);
    const axes = g.constInt64([1]);
    for (const op of ['ReduceMax', 'ReduceMin', 'ReduceSum'] as const) {
      const name = op.slice('Reduce'.length).toLowerCase();
      g.op(op, [x, axes], { keepdims: 0 }, name);
      g.output(name, 'float32', ['windows', 'width']);
    }
    const positive = g.op('Cast', [g.op('Greater', [x, g.constFloat([0], [])])], { to: 1 });
    g.op('ReduceSum', [positive, axes], { keepdims: 0 }, 'nonzero');
    g.output('nonzero', 'float32', ['windows', 'width']);
    if (options.columns ?? true) {
      // neuron-major copies, so a window entering a neuron's top-k is copied contiguously
      g.op('Transpose', [x], { perm: [0, 2, 1] }, 'columns');
      g.output('columns', 'float32', ['windows', 'width', 'tokens']);
    }
    const { session } = await openSession(g.encode({ graphName: 'window-reducer', opset: 20 }), settings);
    return new WindowReducer(session);
  }

  /** `activations` is [windows, tokens, width] row-major. */
  async reduce(
    activations: Float32Array,
    windows: number,
    tokens: number,
    width: number,
  ): Promise<WindowReduction[]> {
    const out = await this.session.run({
      x: new ort.Tensor('float32', activations, [windows, tokens, width]),
    });
    const row = (name: string, w: number) =>
      (out[name].data as Float32Array).subarray(w * width, (w + 1) * width);
    return Array.from({ length: windows }, (_, w) => ({
      max: row('max', w),
      min: row('min', w),
      sum: row('sum', w),
      nonZero: row('nonzero', w),
      columns: (out.columns?.data as Float32Array | undefined)?.subarray(
        w * width * tokens,
        (w + 1) * width * tokens,
      ),
    }));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
