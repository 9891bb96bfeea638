import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { Gpt2Runner, resolveModelDir, toResidualAdditions } from '@loupe/model';
import { printJson } from '../run-command.js';

interface ActivationsOptions {
  model: string;
  text: string;
  hooks: string;
  logits?: boolean;
  steer?: string;
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
    const steering = options.steer
      ? toResidualAdditions(parseJson(options.steer, '--steer'), runner.manifest.dims.nLayer)
      : [];
    const ids = runner.tokenizer.encode(options.text);
    const [result] = await runner.forward([{ ids, hooks, logits: Boolean(options.logits), steering }]);
    const rows = (values: Float32Array) => toRows(values, values.length / ids.length);
    await printJson({
      ids,
      tokens: runner.tokenizer.tokenStrings(ids),
      activations: Object.fromEntries(hooks.map((hook) => [hook, rows(result.hooks.get(hook)!)])),
      ...(result.logits ? { logits: rows(result.logits) } : {}),
    });
  } finally {
    await runner.close();
  }
}

function toRows(values: Float32Array, width: number): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start < values.length; start += width)
    rows.push(Array.from(values.subarray(start, start + width)));
  return rows;
}

function parseJson(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserInputError(`${flag} is not valid JSON: ${(error as Error).message}`);
  }
}
