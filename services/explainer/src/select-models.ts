import { ConfigError, type LoupeConfig, UserInputError } from '@loupe/common';
import { BaselineExplainer } from './explain/baseline.js';
import { LlmExplainer } from './explain/llm-explainer.js';
import type { Explainer } from './explain/types.js';
import type { JobLlm } from './jobs/job-store.js';
import type { UnitModels } from './jobs/score-unit.js';
import { LlmClient, type LlmClientOptions } from './llm/client.js';
import { CompletionsClient } from './llm/completions.js';
import { llmOptionsFromConfig } from './llm/options.js';
import { BaselineJudge, type Judge, LlmJudge } from './scorers/judge.js';
import { BaselineSimulator } from './simulate/baseline-simulator.js';
import { JsonSimulator } from './simulate/json-simulator.js';
import { LineLogprobSimulator } from './simulate/line-logprob-simulator.js';
import { OpenAiAllAtOnceSimulator } from './simulate/openai-all-at-once-simulator.js';
import { OpenAiTokenByTokenSimulator } from './simulate/openai-token-by-token-simulator.js';
import {
  SIMULATOR_ALIASES,
  SIMULATOR_METHODS,
  type Simulator,
  type SimulatorMethod,
} from './simulate/types.js';

export function parseSimulatorMethod(value: string): SimulatorMethod {
  if ((SIMULATOR_METHODS as string[]).includes(value)) return value as SimulatorMethod;
  const alias = SIMULATOR_ALIASES[value];
  if (alias) return alias;
  throw new UserInputError(`unknown simulator "${value}": expected one of ${SIMULATOR_METHODS.join(', ')}`);
}

/** LOUPE_SIMULATOR, checked: the simulator used when a request names none. */
export function configuredSimulator(config: Pick<LoupeConfig, 'simulator'>): SimulatorMethod | undefined {
  if (!config.simulator) return undefined;
  try {
    return parseSimulatorMethod(config.simulator);
  } catch {
    throw new ConfigError(
      `LOUPE_SIMULATOR="${config.simulator}": expected one of ${SIMULATOR_METHODS.join(', ')}`,
    );
  }
}

/** The simulator of a method on an LLM server; the all-at-once one speaks /completions, the rest chat. */
function llmSimulator(method: Exclude<SimulatorMethod, 'baseline'>, llm: LlmClientOptions, chat: LlmClient) {
  switch (method) {
    case 'openai-all-at-once':
      return new OpenAiAllAtOnceSimulator(new CompletionsClient(llm));
    case 'openai-token-by-token':
      return new OpenAiTokenByTokenSimulator(chat);
    case 'line-logprobs':
      return new LineLogprobSimulator(chat);
    case 'json':
      return new JsonSimulator(chat);
  }
}

/**
 * The explainer, simulator and judge for a request. Without an LLM server everything is the built-in
 * baseline; with one, the LLM unless the baseline simulator is asked for by name.
 */
export function selectModels(
  llm: LlmClientOptions | undefined,
  method: SimulatorMethod | undefined,
): { explainer: Explainer; simulator: Simulator; judge: Judge } {
  const chosen = method ?? (llm ? 'line-logprobs' : 'baseline');
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
  const simulator = chosen === 'baseline' ? new BaselineSimulator() : llmSimulator(chosen, llm, client);
  return { explainer: new LlmExplainer(client), simulator, judge: new LlmJudge(client) };
}

/** A job's LLM as stored: the resolved server and model (never the key), so every unit uses the same. */
export function resolveJobLlm(
  config: Pick<LoupeConfig, 'llmBaseUrl' | 'llmModel'> & Partial<Pick<LoupeConfig, 'simulator'>>,
  request: { baseUrl?: string; model?: string; simulator?: string },
): JobLlm {
  if (request.baseUrl && !/^https?:\/\//.test(request.baseUrl))
    throw new UserInputError(`LLM base URL "${request.baseUrl}" must start with http:// or https://`);
  const baseUrl = request.baseUrl?.replace(/\/+$/, '') ?? config.llmBaseUrl ?? null;
  // The configured default (only meaningful with an LLM server) is resolved now and stored with the
  // job, so every unit uses the same simulator whatever the next process is configured with.
  const named =
    request.simulator || (baseUrl ? configuredSimulator({ simulator: config.simulator }) : undefined);
  const simulator = named ? parseSimulatorMethod(named) : undefined;
  if (!baseUrl && simulator && simulator !== 'baseline')
    throw new UserInputError(
      `the ${simulator} simulator needs an LLM server: give a base URL or set LOUPE_LLM_BASE_URL`,
    );
  return {
    baseUrl,
    model: baseUrl ? (request.model ?? config.llmModel) : null,
    simulator: simulator ?? null,
  };
}

/** The models a job's units are scored with; the key and limits come from this process's config. */
export function modelsForJob(config: Parameters<typeof llmOptionsFromConfig>[0], llm: JobLlm): UnitModels {
  const options = llm.baseUrl
    ? llmOptionsFromConfig(config, { baseUrl: llm.baseUrl, ...(llm.model ? { model: llm.model } : {}) })
    : undefined;
  return selectModels(options, llm.simulator ? parseSimulatorMethod(llm.simulator) : undefined);
}
