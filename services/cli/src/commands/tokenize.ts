import { loadConfig, modelsDir } from '@loupe/common';
import { Gpt2Tokenizer, readManifest, resolveModelDir } from '@loupe/model';
import { printJson } from '../run-command.js';

export async function tokenize(options: { model: string; text: string }): Promise<void> {
  const dir = resolveModelDir(modelsDir(loadConfig()), options.model);
  const manifest = await readManifest(dir);
  const tokenizer = await Gpt2Tokenizer.load(dir, manifest.tokenizer);
  const ids = tokenizer.encode(options.text);
  await printJson({ ids, tokens: tokenizer.tokenStrings(ids) });
}
