import { Gpt2Tokenizer, readManifest } from '@loupe/model';
import { printJson } from '../run-command.js';

export async function tokenize(options: { model: string; text: string }): Promise<void> {
  const manifest = await readManifest(options.model);
  const tokenizer = await Gpt2Tokenizer.load(options.model, manifest.tokenizer);
  const ids = tokenizer.encode(options.text);
  await printJson({ ids, tokens: tokenizer.tokenStrings(ids) });
}
