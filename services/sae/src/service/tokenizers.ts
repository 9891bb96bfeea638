import path from 'node:path';
import { type LoupeConfig, LoupeError, modelsDir } from '@loupe/common';
import { Gpt2Tokenizer } from '@loupe/model';
import { Inject, Injectable } from '@nestjs/common';
import { CONFIG } from './tokens.js';

const MODEL_NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Token strings for stored token ids need the model's vocabulary, not a forward pass: the tokenizer
 * is read from the model folder in the shared data directory ($LOUPE_DATA_DIR/models/<model>).
 */
@Injectable()
export class Tokenizers {
  private readonly loaded = new Map<string, Promise<Gpt2Tokenizer>>();

  constructor(@Inject(CONFIG) private readonly config: LoupeConfig) {}

  get(model: string): Promise<Gpt2Tokenizer> {
    const name = model === '' || model === 'unknown' ? this.config.model : model;
    let tokenizer = this.loaded.get(name);
    if (!tokenizer) {
      tokenizer = this.load(name);
      tokenizer.catch(() => this.loaded.delete(name));
      this.loaded.set(name, tokenizer);
    }
    return tokenizer;
  }

  private async load(name: string): Promise<Gpt2Tokenizer> {
    const isPath = name === this.config.model && name.includes('/');
    if (!isPath && !MODEL_NAME.test(name))
      throw new LoupeError(`model "${name}" is not a model folder name; no tokenizer for it`, 'CONFIG');
    const dir = isPath ? path.resolve(name) : path.join(modelsDir(this.config), name);
    return Gpt2Tokenizer.load(dir).catch((error: Error) => {
      throw new LoupeError(
        `token strings need model ${name}'s tokenizer in ${dir} (vocab.json, merges.txt): ${error.message}`,
        'CONFIG',
      );
    });
  }
}
