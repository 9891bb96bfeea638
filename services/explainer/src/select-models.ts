import { UserInputError } from '@loupe/common';
import { BaselineExplainer } from './explain/baseline.js';
import { LlmExplainer } from './explain/llm-explainer.js';
import type { Explainer } from './explain/types.js';
import { LlmClient, type LlmClientOptions } from './llm/client.js';
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
