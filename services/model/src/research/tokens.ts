import { UserInputError } from '@loupe/common';
import type { Gpt2Tokenizer } from '../tokenizer/gpt2-tokenizer.js';

/** The one token `text` encodes to (" Paris" with its space); anything else is refused with what it is. */
export function singleToken(tokenizer: Gpt2Tokenizer, text: string, what: string): number {
  const ids = tokenizer.encode(text);
  if (ids.length !== 1) {
    throw new UserInputError(
      `${what} ${JSON.stringify(text)} is ${ids.length} tokens (${JSON.stringify(tokenizer.tokenStrings(ids))}); give exactly one token, with its leading space if it has one`,
    );
  }
  return ids[0];
}

/** Reads the text as tokens for an experiment: not empty. */
export function experimentIds(tokenizer: Gpt2Tokenizer, text: string, what: string): number[] {
  const ids = tokenizer.encode(text);
  if (ids.length === 0) throw new UserInputError(`${what} is empty: at least one token is needed`);
  return ids;
}
