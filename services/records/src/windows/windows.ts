import type { Document } from './dataset.js';

/** A slice of one document's tokens: the unit that records show and shards store. */
export interface Window {
  index: number;
  documentId: string;
  /** token offset of the window inside its document */
  start: number;
  ids: number[];
}

export interface WindowOptions {
  length: number;
  /** a document's tail shorter than this is dropped (too little context to be worth showing) */
  minLength: number;
  maxTokens: number;
}

/**
 * Cuts documents into consecutive windows of `length` tokens, numbered in dataset order, stopping once
 * `maxTokens` tokens are covered. Deterministic, so a resumed job sees the same windows.
 */
export async function* cutWindows(
  documents: AsyncIterable<Document>,
  encode: (text: string) => number[],
  options: WindowOptions,
): AsyncGenerator<Window> {
  let index = 0;
  let tokens = 0;
  for await (const document of documents) {
    const ids = encode(document.text);
    for (let start = 0; start < ids.length; start += options.length) {
      const slice = ids.slice(start, start + options.length);
      if (slice.length < options.minLength) break;
      const take = slice.slice(0, Math.max(0, options.maxTokens - tokens));
      if (take.length < options.minLength) return;
      yield { index: index++, documentId: document.id, start, ids: take };
      tokens += take.length;
      if (tokens >= options.maxTokens) return;
    }
  }
}
