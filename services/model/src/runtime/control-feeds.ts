import ort from 'onnxruntime-node';
import type { Gpt2Config } from '../config/gpt2-config.js';
import {
  clampInputs,
  pastKeyInput,
  pastValueInput,
  steeringInput,
  WINDOW_STATS_INPUT,
} from '../graph/gpt2-graph.js';
import type { ForwardRequest } from './gpt2-runner.js';
import { patchFeeds } from './patch-feeds.js';

// The graph's control inputs (steering, clamps, the key/value cache) have no defaults (see
// gpt2-graph.ts): every run feeds them, neutral where a request asks for nothing.

/**
 * One `steer.{L}` input per layer: [1, 1, d] zeros when no request steers it, [batch, 1, d] when all
 * of its additions are per-vector, [batch, seq, d] when any is per position (padding stays zero).
 */
export function steeringFeeds(
  dims: Gpt2Config,
  requests: Pick<ForwardRequest, 'ids' | 'steering'>[],
  seq: number,
): Record<string, ort.Tensor> {
  const { dModel, nLayer } = dims;
  const feeds: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < nLayer; layer++) {
    const additions = requests.map((r) => (r.steering ?? []).filter((a) => a.layer === layer));
    if (additions.every((a) => a.length === 0)) {
      feeds[steeringInput(layer)] = new ort.Tensor('float32', new Float32Array(dModel), [1, 1, dModel]);
      continue;
    }
    const perPosition = additions.some((list) => list.some((a) => a.vector.length !== dModel));
    const positions = perPosition ? seq : 1;
    const values = new Float32Array(requests.length * positions * dModel);
    for (const [row, list] of additions.entries()) {
      const tokens = perPosition ? requests[row].ids.length : 1;
      for (const add of list) {
        const broadcast = add.vector.length === dModel;
        for (let t = 0; t < tokens; t++) {
          const target = (row * positions + t) * dModel;
          const source = broadcast ? 0 : t * dModel;
          for (let i = 0; i < dModel; i++) values[target + i] += add.strength * add.vector[source + i];
        }
      }
    }
    feeds[steeringInput(layer)] = new ort.Tensor('float32', values, [requests.length, positions, dModel]);
  }
  return feeds;
}

/**
 * Per layer, F = the most features any request clamps there: F = 0 (empty tensors, nothing computed)
 * when none does, otherwise one row per request, with requests clamping fewer padded by zero
 * encoder/decoder columns, which add exactly 0.
 */
export function clampFeeds(
  dims: Gpt2Config,
  requests: Pick<ForwardRequest, 'clamps'>[],
): Record<string, ort.Tensor> {
  const { dModel: d, nLayer } = dims;
  const feeds: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < nLayer; layer++) {
    const lists = requests.map((r) => (r.clamps ?? []).filter((c) => c.layer === layer));
    const f = Math.max(...lists.map((list) => list.length));
    const b = f === 0 ? 1 : requests.length;
    const encoder = new Float32Array(b * d * f);
    const decoder = new Float32Array(b * f * d);
    const bias = new Float32Array(b * f);
    const threshold = new Float32Array(b * f);
    const value = new Float32Array(b * f);
    for (const [row, list] of f === 0 ? [] : lists.entries()) {
      for (const [k, clamp] of list.entries()) {
        for (let i = 0; i < d; i++) encoder[row * d * f + i * f + k] = clamp.encoder[i];
        decoder.set(clamp.decoder, (row * f + k) * d);
        bias[row * f + k] = clamp.bias;
        threshold[row * f + k] = clamp.threshold;
        value[row * f + k] = clamp.value;
      }
    }
    const names = clampInputs(layer);
    feeds[names.encoder] = new ort.Tensor('float32', encoder, [b, d, f]);
    feeds[names.decoder] = new ort.Tensor('float32', decoder, [b, f, d]);
    feeds[names.bias] = new ort.Tensor('float32', bias, [b, 1, f]);
    feeds[names.threshold] = new ort.Tensor('float32', threshold, [b, 1, f]);
    feeds[names.value] = new ort.Tensor('float32', value, [b, 1, f]);
  }
  return feeds;
}

/** Zero-length pasts [batch, head, 0, d_head] for every layer: a forward pass with nothing cached. */
export function emptyPastFeeds(dims: Gpt2Config, batch: number): Record<string, ort.Tensor> {
  const { nLayer, nHead, dModel } = dims;
  const shape = [batch, nHead, 0, dModel / nHead];
  const feeds: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < nLayer; layer++) {
    feeds[pastKeyInput(layer)] = new ort.Tensor('float32', new Float32Array(0), shape);
    feeds[pastValueInput(layer)] = new ort.Tensor('float32', new Float32Array(0), shape);
  }
  return feeds;
}

/**
 * Feeds that leave every layer unsteered, unclamped and without statistics, for callers running a session directly (the
 * graph has no defaults: see gpt2-graph.ts).
 */
export function neutralControlFeeds(dims: Gpt2Config, batch = 1): Record<string, ort.Tensor> {
  const { nLayer, dModel: d } = dims;
  // onnxruntime-node drops feeds a graph does not take, so the trunk ignores the pasts
  const feeds: Record<string, ort.Tensor> = { ...emptyPastFeeds(dims, batch), ...patchFeeds(dims, []) };
  const empty = (shape: number[]) => new ort.Tensor('float32', new Float32Array(0), shape);
  feeds[WINDOW_STATS_INPUT] = new ort.Tensor('bool', new Uint8Array(nLayer), [nLayer]); // the trunk's; all off
  for (let layer = 0; layer < nLayer; layer++) {
    feeds[steeringInput(layer)] = new ort.Tensor('float32', new Float32Array(d), [1, 1, d]);
    const names = clampInputs(layer);
    feeds[names.encoder] = empty([1, d, 0]);
    feeds[names.decoder] = empty([1, 0, d]);
    for (const name of [names.bias, names.threshold, names.value]) feeds[name] = empty([1, 1, 0]);
  }
  return feeds;
}
