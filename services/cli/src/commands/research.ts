import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import {
  activationPatching,
  directLogitAttribution,
  experimentIds,
  Gpt2Runner,
  logitLens,
  type PatchSweepHook,
  resolveModelDir,
  singleToken,
} from '@loupe/model';
import { printJson } from '../run-command.js';

// The research experiments (logit lens, direct logit attribution, activation patching): thin wrappers
// over services/model/src/research, JSON on stdout.

async function withRunner<T>(model: string, work: (runner: Gpt2Runner) => Promise<T>): Promise<void> {
  const config = loadConfig();
  const runner = await Gpt2Runner.load(resolveModelDir(modelsDir(config), model), {
    device: config.device,
    intraOpThreads: config.intraOpThreads,
  });
  try {
    await printJson(await work(runner));
  } finally {
    await runner.close();
  }
}

export function lens(options: { model: string; text: string; token?: string; top: string }): Promise<void> {
  return withRunner(options.model, (runner) =>
    logitLens(runner, experimentIds(runner.tokenizer, options.text, '--text'), {
      topK: positiveInt(options.top, '--top'),
      token:
        options.token === undefined ? undefined : singleToken(runner.tokenizer, options.token, '--token'),
    }),
  );
}

export function dla(options: { model: string; text: string; token: string; wrong?: string }): Promise<void> {
  return withRunner(options.model, (runner) =>
    directLogitAttribution(
      runner,
      experimentIds(runner.tokenizer, options.text, '--text'),
      singleToken(runner.tokenizer, options.token, '--token'),
      options.wrong === undefined ? undefined : singleToken(runner.tokenizer, options.wrong, '--wrong'),
    ),
  );
}

export function patch(options: {
  model: string;
  clean: string;
  corrupted: string;
  answer: string;
  wrong: string;
  hook: string;
}): Promise<void> {
  return withRunner(options.model, (runner) =>
    activationPatching(runner, {
      clean: experimentIds(runner.tokenizer, options.clean, '--clean'),
      corrupted: experimentIds(runner.tokenizer, options.corrupted, '--corrupted'),
      answer: singleToken(runner.tokenizer, options.answer, '--answer'),
      wrong: singleToken(runner.tokenizer, options.wrong, '--wrong'),
      hook: options.hook as PatchSweepHook,
    }),
  );
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 100)
    throw new UserInputError(`${flag} must be an integer 1-100, got ${text}`);
  return n;
}
