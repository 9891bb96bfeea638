import path from 'node:path';
import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import { Gpt2Runner, resolveModelDir } from '@loupe/model';
import { cutWindows, readDataset } from '@loupe/records';
import { evaluateSource, openActivationSource, readSaeLens, SaeEncoder, splicedLoss } from '@loupe/sae';
import { printJson } from '../run-command.js';

interface EvalOptions {
  activations: string;
  tensor?: string;
  hook?: string;
  maxVectors: string;
  model?: string;
  dataset: string;
  spliceTokens: string;
  json?: boolean;
}

function whole(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UserInputError(`${flag} must be a whole number ≥ 1, got ${value}`);
  return n;
}

/**
 * `loupe sae eval`: the held-out metrics every SAE is reported with (reconstruction on vectors it was
 * not trained on, through the same ONNX Runtime encoder the service uses) and, with --model, the loss
 * with the SAE spliced into the model over windows of a dataset.
 */
export async function evaluate(saeDir: string, options: EvalOptions): Promise<void> {
  const config = loadConfig();
  const maxVectors = whole(options.maxVectors, '--max-vectors');
  const spliceTokens = whole(options.spliceTokens, '--splice-tokens');
  const sae = await readSaeLens(path.resolve(saeDir));
  const source = await openActivationSource(options.activations, {
    tensor: options.tensor,
    hook: options.hook ?? sae.config.hookName ?? undefined,
    expectedWidth: sae.config.dIn,
  });
  const encoder = await SaeEncoder.open(sae, {
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  });
  try {
    const reconstruction = await evaluateSource(sae, source, maxVectors, (x, rows) =>
      encoder.encode(x, rows),
    );
    let spliced = null;
    if (options.model) {
      const runner = await Gpt2Runner.load(resolveModelDir(modelsDir(config), options.model), {
        device: config.device,
        intraOpThreads: config.intraOpThreads,
      });
      try {
        const windows: number[][] = [];
        for await (const w of cutWindows(readDataset(options.dataset), (t) => runner.tokenizer.encode(t), {
          length: 64,
          minLength: 8,
          maxTokens: spliceTokens,
        }))
          windows.push(w.ids);
        spliced = await splicedLoss(runner, sae, windows, {
          reconstruct: async (x, rows) => encoder.decode(await encoder.encode(x, rows), rows),
        });
      } finally {
        await runner.close();
      }
    }
    await printJson({
      sae: sae.config.hookName ? `${sae.config.modelName ?? '?'}/${sae.config.hookName}` : saeDir,
      architecture: sae.config.architecture,
      dIn: sae.config.dIn,
      dSae: sae.config.dSae,
      ...reconstruction,
      ...(spliced
        ? {
            ceClean: spliced.cleanCe,
            ceSpliced: spliced.splicedCe,
            ceZeroAblated: spliced.zeroAblatedCe,
            ceLossRecovered: spliced.ceRecovered,
            klDivergence: spliced.kl,
            splicedTokens: spliced.tokens,
          }
        : {}),
    });
  } finally {
    await encoder.close();
  }
}
