import path from 'node:path';
import ort from 'onnxruntime-node';
import { neutralControlFeeds, readManifest } from '@loupe/capture';
import { blockHook } from '@loupe/common';
const dir = '/tmp/loupe-exp-gpt2-small'; const m = await readManifest(dir); const dims = m.dims;
const s = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), { intraOpNumThreads: 0, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
const ids = Array.from({ length: 1024 }, (_, i) => BigInt(i * 37 % 50257));
const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [8, 128]), attention_mask: new ort.Tensor('int64', new BigInt64Array(1024).fill(1n), [8, 128]), ...neutralControlFeeds(dims) };
const hooks = []; for (let l = 0; l < 12; l++) hooks.push(blockHook(l, 'hook_resid_pre'), blockHook(l, 'hook_resid_post'), blockHook(l, 'mlp.hook_post'));
const t = async (f) => { const a = performance.now(); await f(); return performance.now() - a; };
const ratios = [];
for (let r = 0; r < 8; r++) { const a = await t(() => s.run(feeds, ['logits'])); const b = await t(() => s.run(feeds, [...hooks, 'logits'])); ratios.push(b / a); }
const A=[],B=[]; for (let r = 0; r < 6; r++) { A.push(await t(() => s.run(feeds, ['logits']))); B.push(await t(() => s.run(feeds, [...hooks, 'logits']))); } A.sort((x,y)=>x-y); B.sort((x,y)=>x-y); ratios.sort(); console.log(process.env.GLIBC_TUNABLES ?? 'default', 'logits', A[3].toFixed(0), 'hooks+logits', B[3].toFixed(0), 'cost', ((ratios[4] - 1) * 100).toFixed(1), '%');
