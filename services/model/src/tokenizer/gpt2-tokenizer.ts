import fs from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { CheckpointError } from '@loupe/common';
import { displayBytes, tokenBytes } from './byte-level.js';

const END_OF_TEXT = '<|endoftext|>';

/**
 * Exact GPT-2 byte-level BPE built from a checkpoint's own vocab.json and merges.txt (the tokenizer
 * library does the merging; this module only assembles its configuration and adds display strings).
 */
export class Gpt2Tokenizer {
  private readonly display: string[];

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly vocabSize: number,
    readonly endOfTextId: number | null,
    vocab: Record<string, number>,
  ) {
    this.display = new Array<string>(vocabSize).fill('');
    for (const [token, id] of Object.entries(vocab)) {
      const bytes = tokenBytes(token);
      this.display[id] = bytes ? displayBytes(bytes) : token;
    }
  }

  static async load(
    dir: string,
    files = { vocab: 'vocab.json', merges: 'merges.txt' },
  ): Promise<Gpt2Tokenizer> {
    const vocabPath = path.join(dir, files.vocab);
    const mergesPath = path.join(dir, files.merges);
    let vocab: Record<string, number>;
    try {
      vocab = JSON.parse(await fs.readFile(vocabPath, 'utf8')) as Record<string, number>;
    } catch (error) {
      throw new CheckpointError(`${vocabPath}: cannot read the vocabulary (${(error as Error).message})`);
    }
    const merges = parseMerges(await fs.readFile(mergesPath, 'utf8'), mergesPath);
    const ids = Object.values(vocab);
    const vocabSize = Math.max(...ids) + 1;
    if (ids.length !== vocabSize)
      throw new CheckpointError(`${vocabPath}: token ids are not 0..${ids.length - 1} without gaps`);
    const endOfTextId = vocab[END_OF_TEXT] ?? null;
    const config = {
      version: '1.0',
      added_tokens:
        endOfTextId === null
          ? []
          : [
              {
                id: endOfTextId,
                content: END_OF_TEXT,
                single_word: false,
                lstrip: false,
                rstrip: false,
                normalized: true,
                special: true,
              },
            ],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    };
    return new Gpt2Tokenizer(new Tokenizer(config, {}), vocabSize, endOfTextId, vocab);
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** One display string per id (partial UTF-8 shown as \xNN escapes). */
  tokenStrings(ids: number[]): string[] {
    return ids.map((id) => this.display[id] ?? `<unknown id ${id}>`);
  }
}

function parseMerges(text: string, file: string): string[] {
  const merges: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.startsWith('#version') || line.trim() === '') continue;
    if (line.split(' ').length !== 2)
      throw new CheckpointError(`${file}:${index + 1}: expected "left right", got ${JSON.stringify(line)}`);
    merges.push(line);
  }
  return merges;
}
