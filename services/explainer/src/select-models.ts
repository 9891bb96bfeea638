import { type LoupeConfig, UserInputError } from '@loupe/common';
import { BaselineExplainer } from './explain/baseline.js';
import { LlmExplainer } from './explain/llm-explainer.js';
import type { Explainer } from './explain/types.js';
import type { JobLlm } from './jobs/job-store.js';
import type { UnitModels } from './jobs/score-unit.js';
import { LlmClient, type LlmClientOptions } from './llm/client.js';
import { llmOptionsFromConfig } from './llm/options.js';
import { BaselineJudge, type Judge, LlmJudge } from './scorers/judge.js';
import { BaselineSimulator } from './simulate/baseline-simulator.js';
import { JsonSimulator } from './simulate/json-simulator.js';
import { LogprobSimulator } from './simulate/logprob-simulator.js';
import { SIMULATOR_METHODS, type Simulator, type SimulatorMethod } from './simulate/types.js';

export function parseSimulatorMethod(value: string): SimulatorMethod {
  if ((SIMULATOR_METHODS as string[]).includes(value)) return value as SimulatorMethod;
  throw new UserInputError(`unknown simulator "${value}": expected one of ${SIMULATOR_METHODS.join(', ')}`);
}

/**
 * The explainer, simulator and judge for a request. Without an LLM server everything is the built-in
 * baseline; with one, the LLM unless the baseline simulator is asked for by name.
 */
export function selectModels(
  llm: LlmClientOptions | undefined,
  method: SimulatorMethod | undefined,
): { explainer: Explainer; simulator: Simulator; judge: Judge } {
  const chosen = method ?? (llm ? 'logprobs' : 'baseline');
  if (chosen !== 'baseline' && !llm)
    throw new UserInputError(
      `the ${chosen} simulator needs an LLM server: pass --llm-base-url or set LOUPE_LLM_BASE_URL (or use --simulator baseline)`,
    );
  if (!llm)
    return {
      explainer: new BaselineExplainer(),
      simulator: new BaselineSimulator(),
      judge: new BaselineJudge(),
    };
  const client = new LlmClient(llm);
  const simulator =
    chosen === 'baseline'
      ? new BaselineSimulator()
      : chosen === 'json'
        ? new JsonSimulator(client)
        : new LogprobSimulator(client);
  return { explainer: new LlmExplainer(client), simulator, judge: new LlmJudge(client) };
}

/** A job's LLM as stored: the resolved server and model (never the key), so every unit uses the same. */
export function resolveJobLlm(
  config: Pick<LoupeConfig, 'llmBaseUrl' | 'llmModel'>,
  choice: { baseUrl?: string; model?: string; simulator?: string },
): JobLlm {
  if (choice.simulator) parseSimulatorMethod(choice.simulator);
  if (choice.baseUrl && !/^https?:\/\//.test(choice.baseUrl))
    throw new UserInputError(`LLM base URL "${choice.baseUrl}" must start with http:// or https://`);
  const baseUrl = choice.baseUrl?.replace(/\/+$/, '') ?? config.llmBaseUrl ?? null;
  if (!baseUrl && choice.simulator && choice.simulator !== 'baseline')
    throw new UserInputError(
      `the ${choice.simulator} simulator needs an LLM server: give a base URL or set LOUPE_LLM_BASE_URL`,
    );
  return {
    baseUrl,
    model: baseUrl ? (choice.model ?? config.llmModel) : null,
    simulator: choice.simulator ?? null,
  };
}

/** The models a job's units are scored with; the key and limits come from this process's config. */
export function modelsForJob(config: Parameters<typeof llmOptionsFromConfig>[0], llm: JobLlm): UnitModels {
  const options = llm.baseUrl
    ? llmOptionsFromConfig(config, { baseUrl: llm.baseUrl, ...(llm.model ? { model: llm.model } : {}) })
    : undefined;
  return selectModels(options, llm.simulator ? parseSimulatorMethod(llm.simulator) : undefined);
}
