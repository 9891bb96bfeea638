import { GraphBuilder, type Logger, UserInputError } from '@loupe/common';
import { type ExecutionProvider, openSession, type RuntimeSession, type SessionSettings } from '@loupe/model';
import ort from 'onnxruntime-node';
import { saeLensArchitecture } from '../format/architectures/registry.js';
import type { Sae } from '../format/sae-model.js';

export interface SaeEncoderSettings extends SessionSettings {
  log?: Logger;
}

const OPSET = 20;

/**
 * ONNX graph of SAELens' encode for any of the three architectures: optional constant_norm_rescale
 * (x·√d_in/‖x‖) or layer_norm ((x − mean)/(std + 1e-5)), optional b_dec subtraction, pre = x·W_enc + b_enc, then ReLU / JumpReLU / TopK.
 * Weights are initializers and the row count is symbolic, so one session serves any batch.
 */
export function buildEncoderGraph(sae: Sae): Uint8Array {
  const { dIn, dSae } = sae.config;
  const g = new GraphBuilder();
  let x = g.input('x', 'float32', ['rows', dIn]);
  if (sae.config.normalizeActivations === 'constant_norm_rescale') {
    const norm2 = g.op('ReduceSum', [g.op('Mul', [x, x]), g.constInt64([1], [1], 'axis1')], { keepdims: 1 });
    const scale = g.op('Div', [g.constFloat([Math.sqrt(dIn)], [], 'sqrt_d_in'), g.op('Sqrt', [norm2])]);
    x = g.op('Mul', [x, scale], {}, 'x_scaled');
  }
  if (sae.config.normalizeActivations === 'layer_norm') {
    // (x − mean) / (std + 1e-5) per row, std the unbiased one (torch's x.std()), as SAELens does
    const axis = g.constInt64([1], [1], 'axis1_ln');
    const mean = g.op('Div', [
      g.op('ReduceSum', [x, axis], { keepdims: 1 }),
      g.constFloat([dIn], [], 'd_in'),
    ]);
    const centred = g.op('Sub', [x, mean]);
    const variance = g.op('Div', [
      g.op('ReduceSum', [g.op('Mul', [centred, centred]), axis], { keepdims: 1 }),
      g.constFloat([dIn - 1], [], 'd_in_minus_1'),
    ]);
    const std = g.op('Add', [g.op('Sqrt', [variance]), g.constFloat([1e-5], [], 'ln_eps')]);
    x = g.op('Div', [centred, std], {}, 'x_normalised');
  }
  const W_enc = g.inlineWeight('W_enc', [dIn, dSae], sae.weights.W_enc);
  const b_enc = g.inlineWeight('b_enc', [dSae], sae.weights.b_enc);
  if (sae.config.applyBDecToInput) {
    x = g.op('Sub', [x, g.inlineWeight('b_dec', [dIn], sae.weights.b_dec)], {}, 'centred');
  }
  const pre = g.op('Add', [g.op('MatMul', [x, W_enc]), b_enc], {}, 'pre');
  g.output(saeLensArchitecture(sae.config.architecture).activationGraph(g, sae, pre), 'float32', [
    'rows',
    dSae,
  ]);
  return g.encode({ graphName: `sae_encode_${sae.config.architecture}`, opset: OPSET });
}

/** Decoder graph: x̂ = acts·W_dec + b_dec (in the normalised space when the SAE rescales inputs). */
export function buildDecoderGraph(sae: Sae): Uint8Array {
  const { dIn, dSae } = sae.config;
  const g = new GraphBuilder();
  const acts = g.input('acts', 'float32', ['rows', dSae]);
  const W_dec = g.inlineWeight('W_dec', [dSae, dIn], sae.weights.W_dec);
  const b_dec = g.inlineWeight('b_dec', [dIn], sae.weights.b_dec);
  g.op('Add', [g.op('MatMul', [acts, W_dec]), b_dec], {}, 'x_hat');
  g.output('x_hat', 'float32', ['rows', dIn]);
  return g.encode({ graphName: 'sae_decode', opset: OPSET });
}

/**
 * Bulk encode (and decode) of one SAE on ONNX Runtime. It matches `encode` in format/sae-forward.ts
 * up to float32 accumulation order; that TS function is the reference it is tested against.
 */
export class SaeEncoder {
  private decoder?: Promise<RuntimeSession>;

  private constructor(
    readonly sae: Sae,
    private readonly session: RuntimeSession,
    readonly provider: ExecutionProvider,
    private readonly settings: SaeEncoderSettings,
  ) {}

  static async open(sae: Sae, settings: SaeEncoderSettings): Promise<SaeEncoder> {
    const { session, provider } = await openSession(buildEncoderGraph(sae), settings, settings.log);
    return new SaeEncoder(sae, session, provider, settings);
  }

  get dIn(): number {
    return this.sae.config.dIn;
  }

  get dSae(): number {
    return this.sae.config.dSae;
  }

  /** Latent activations, dense row-major [rows, d_sae], of row-major inputs [rows, d_in]. */
  async encode(x: Float32Array, rows: number): Promise<Float32Array> {
    checkLength('activations', x, rows, this.dIn);
    if (rows === 0) return new Float32Array(0);
    const out = await this.session.run({ x: new ort.Tensor('float32', x, [rows, this.dIn]) });
    return out.acts.data as Float32Array;
  }

  /**
   * acts·W_dec + b_dec for dense latents [rows, d_sae]. With constant_norm_rescale or layer_norm this
   * is in the normalised space; `inputScales` says how to get back to the raw one.
   */
  async decode(acts: Float32Array, rows: number): Promise<Float32Array> {
    checkLength('latents', acts, rows, this.dSae);
    if (rows === 0) return new Float32Array(0);
    this.decoder ??= openSession(buildDecoderGraph(this.sae), this.settings).then((s) => s.session);
    const out = await (await this.decoder).run({ acts: new ort.Tensor('float32', acts, [rows, this.dSae]) });
    return out.x_hat.data as Float32Array;
  }

  async close(): Promise<void> {
    await this.session.release();
    if (this.decoder) await (await this.decoder).release();
  }
}

function checkLength(what: string, data: Float32Array, rows: number, width: number): void {
  if (!Number.isInteger(rows) || rows < 0 || data.length !== rows * width) {
    throw new UserInputError(
      `${what}: expected ${rows} rows of width ${width} (${rows * width} values), got ${data.length}`,
    );
  }
}
