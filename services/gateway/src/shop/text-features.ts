import type { SaeApi } from '@loupe/common/grpc';
import DataLoader from 'dataloader';
import { callSae } from '../sae/sae.js';
import type { TextFeatures } from './shared-features.js';

/** Encode calls one search keeps in flight at once (a page of results asks for up to 2k + 1 texts). */
const CONCURRENCY = 16;

/**
 * The SAE's top features of texts, one Encode per distinct text (the SAE service encodes one text per
 * call): the query and every result's text of one search go through one loader, so a product in both
 * the steered and the unsteered results, or asked for by several fields, is encoded once.
 */
export function textFeaturesLoader(sae: SaeApi, saeId: string, top: number) {
  return new DataLoader<string, TextFeatures>(async (texts) => {
    const out: (TextFeatures | Error)[] = new Array(texts.length);
    let next = 0;
    const worker = async () => {
      while (next < texts.length) {
        const i = next++;
        out[i] = await callSae(() => sae.Encode({ saeId, text: texts[i], perToken: 1, top })).then(
          ({ top: summary }) =>
            new Map(summary.map((s) => [s.feature, { value: s.maxValue, tokens: s.tokens }])),
          (error: Error) => error,
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, texts.length) }, worker));
    return out;
  });
}
