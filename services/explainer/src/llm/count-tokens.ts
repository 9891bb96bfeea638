import type { ChatMessage } from './types.js';

// Servers that omit `usage` (some llama.cpp and Ollama builds) still need a cost figure. o200k_base is
// the tokenizer of current OpenAI models; for other models the count is an estimate, and is labelled so.
// A few tokens per message cover the role and separators, as OpenAI's own counting guide does. Loaded
// lazily: the encoder's tables take a moment and most servers send `usage`.
const PER_MESSAGE_OVERHEAD = 4;

type Encode = (text: string) => number[];
let encoder: Promise<Encode> | undefined;
const loadEncoder = () => {
  encoder ??= import('gpt-tokenizer/encoding/o200k_base').then((m) => m.encode as Encode);
  return encoder;
};

export async function countTextTokens(text: string): Promise<number> {
  return (await loadEncoder())(text).length;
}

export async function countPromptTokens(messages: readonly ChatMessage[]): Promise<number> {
  const encode = await loadEncoder();
  return messages.reduce((n, m) => n + PER_MESSAGE_OVERHEAD + encode(m.content).length, 3);
}
