import { allHooks, attentionHooks, hookLayout, parseHook } from '@loupe/common';
import ort from 'onnxruntime-node';
import type { Gpt2Config } from '../config/gpt2-config.js';
import { patchInputs } from '../graph/gpt2-graph.js';
import type { HookPatch } from './patches.js';

/**
 * Every hook's `patch.{hook}.index` / `.value` inputs (see gpt2-graph.ts): K = 0 rows where no request
 * patches the hook, which the graph's scatter passes through untouched; otherwise one index row per
 * rewritten slice, naming the request's batch row. Patches must be checked (`toHookPatches`) and mean
 * patches resolved first.
 */
export function patchFeeds(
  dims: Gpt2Config,
  requests: { patches?: HookPatch[] }[],
): Record<string, ort.Tensor> {
  const byHook = new Map<string, { row: number; patch: HookPatch }[]>();
  requests.forEach((request, row) => {
    for (const patch of request.patches ?? []) {
      const list = byHook.get(patch.hook) ?? [];
      list.push({ row, patch });
      byHook.set(patch.hook, list);
    }
  });
  const feeds: Record<string, ort.Tensor> = {};
  for (const hook of [...allHooks(dims.nLayer), ...attentionHooks(dims.nLayer)]) {
    const layout = hookLayout(parseHook(hook, dims.nLayer), dims);
    const rank = layout.kind === 'position' ? 2 : 3;
    const width =
      layout.kind === 'position' ? layout.width : layout.kind === 'head' ? layout.dHead : dims.nPositions;
    const indices: number[] = [];
    const slices: Float32Array[] = [];
    for (const { row, patch } of byHook.get(hook) ?? []) {
      const values = patch.values;
      if (values === 'mean') throw new Error(`mean patch of ${hook} was not resolved before the forward`);
      const heads = patch.head === undefined ? [...Array(dims.nHead).keys()] : [patch.head];
      // per listed position: [width] | [heads, d_head] | [heads, keys] (keys = this text's length)
      const perPosition = values.length / patch.positions.length;
      const inner = layout.kind === 'position' ? perPosition : perPosition / heads.length;
      patch.positions.forEach((position, r) => {
        if (layout.kind === 'position') {
          indices.push(row, position);
          slices.push(values.subarray(r * perPosition, (r + 1) * perPosition));
          return;
        }
        heads.forEach((head, h) => {
          indices.push(...(layout.kind === 'head' ? [row, position, head] : [row, head, position]));
          const start = r * perPosition + h * inner;
          slices.push(values.subarray(start, start + inner));
        });
      });
    }
    const k = slices.length;
    const value = new Float32Array(k * width); // keyed rows beyond the text's keys stay 0
    slices.forEach((slice, i) => {
      value.set(slice, i * width);
    });
    const names = patchInputs(hook);
    feeds[names.index] = new ort.Tensor('int64', BigInt64Array.from(indices, BigInt), [k, rank]);
    feeds[names.value] = new ort.Tensor('float32', value, [k, width]);
  }
  return feeds;
}
