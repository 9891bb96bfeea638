import { type LoupeConfig, UserInputError } from '@loupe/common';
import { Inject, Injectable } from '@nestjs/common';
import type { JobLlm } from '../jobs/job-store.js';
import type { UnitModels } from '../jobs/score-unit.js';
import { llmOptionsFromConfig } from '../llm/options.js';
import { parseSimulatorMethod, selectModels } from '../select-models.js';
import { CONFIG } from './tokens.js';
import type { LlmChoice } from './wire.js';

/** Explainer, simulator and judge for a request: its LLM choice over the service's configuration. */
@Injectable()
export class Models {
  constructor(@Inject(CONFIG) private readonly config: LoupeConfig) {}

  forChoice(choice: LlmChoice): UnitModels {
    if (choice.baseUrl && !/^https?:\/\//.test(choice.baseUrl))
      throw new UserInputError(`LLM base URL "${choice.baseUrl}" must start with http:// or https://`);
    const llm = llmOptionsFromConfig(this.config, {
      ...(choice.baseUrl ? { baseUrl: choice.baseUrl.replace(/\/+$/, '') } : {}),
      ...(choice.model ? { model: choice.model } : {}),
    });
    return selectModels(llm, choice.simulator ? parseSimulatorMethod(choice.simulator) : undefined);
  }

  /** What a job stores: the resolved server and model (never the key), so every unit uses the same. */
  resolveForJob(choice: LlmChoice): JobLlm {
    this.forChoice(choice); // validates now, so a bad choice fails the request rather than the job
    const baseUrl = choice.baseUrl ?? this.config.llmBaseUrl ?? null;
    return {
      baseUrl,
      model: baseUrl ? (choice.model ?? this.config.llmModel) : null,
      simulator: choice.simulator ?? null,
    };
  }

  forJob(llm: JobLlm): UnitModels {
    return this.forChoice({
      baseUrl: llm.baseUrl ?? undefined,
      model: llm.model ?? undefined,
      simulator: llm.simulator ?? (llm.baseUrl ? undefined : 'baseline'),
    });
  }
}
