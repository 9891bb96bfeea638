import { hookShape, loadConfig, modelsDir, parseHook, UserInputError } from '@loupe/common';
import {
  Gpt2Runner,
  resolveMeanPatches,
  resolveModelDir,
  toHookPatches,
  toNested,
  toResidualAdditions,
} from '@loupe/model';
import { printJson } from '../run-command.js';

interface ActivationsOptions {
  model: string;
  text: string;
  hooks: string;
  logits?: boolean;
  steer?: string;
  patch?: string;
}

export async function activations(options: ActivationsOptions): Promise<void> {
  const config = loadConfig();
  const hooks = options.hooks
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (hooks.length === 0 && !options.logits)
    throw new UserInputError(
      'nothing to print: name hooks with --hooks (e.g. --hooks blocks.0.hook_resid_pre,blocks.0.mlp.hook_post) or ask for --logits',
    );
  const runner = await Gpt2Runner.load(resolveModelDir(modelsDir(config), options.model), {
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  });
  try {
    const { dims } = runner.manifest;
    const steering = options.steer
      ? toResidualAdditions(parseJson(options.steer, '--steer'), dims.nLayer)
      : [];
    const ids = runner.tokenizer.encode(options.text);
    const checked = options.patch ? toHookPatches(parseJson(options.patch, '--patch'), dims, ids.length) : [];
    const patches = await resolveMeanPatches(
      checked,
      dims,
      ids.length,
      async (wanted) => (await runner.forward([{ ids, hooks: wanted, logits: false, steering }]))[0].hooks,
    );
    const [result] = await runner.forward([
      { ids, hooks, logits: Boolean(options.logits), steering, patches },
    ]);
    // TransformerLens' shapes without the batch axis; masked attention scores print as null
    const nested = (hook: string) =>
      toNested(result.hooks.get(hook)!, hookShape(parseHook(hook, dims.nLayer), dims, ids.length));
    await printJson({
      ids,
      tokens: runner.tokenizer.tokenStrings(ids),
      activations: Object.fromEntries(hooks.map((hook) => [hook, nested(hook)])),
      ...(result.logits ? { logits: toNested(result.logits, [ids.length, dims.vocabSize]) } : {}),
    });
  } finally {
    await runner.close();
  }
}

function parseJson(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserInputError(`${flag} is not valid JSON: ${(error as Error).message}`);
  }
}
