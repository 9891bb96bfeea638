import type { LoupeConfig } from '@loupe/common';
import { Inject, Injectable } from '@nestjs/common';
import type { JobLlm } from '../jobs/job-store.js';
import type { UnitModels } from '../jobs/score-unit.js';
import { llmOptionsFromConfig } from '../llm/options.js';
import { modelsForJob, parseSimulatorMethod, resolveJobLlm, selectModels } from '../select-models.js';
import { CONFIG } from './tokens.js';
import type { LlmChoice } from './wire.js';

/** Explainer, simulator and judge for a request: its LLM choice over the service's configuration. */
@Injectable()
export class Models {
  constructor(@Inject(CONFIG) private readonly config: LoupeConfig) {}

  forChoice(choice: LlmChoice): UnitModels {
    const resolved = resolveJobLlm(this.config, choice);
    const llm = resolved.baseUrl
      ? llmOptionsFromConfig(this.config, {
          baseUrl: resolved.baseUrl,
          ...(resolved.model ? { model: resolved.model } : {}),
        })
      : undefined;
    return selectModels(llm, choice.simulator ? parseSimulatorMethod(choice.simulator) : undefined);
  }

  /** Validated now, so a bad choice fails the request rather than every unit of the job. */
  resolveForJob(choice: LlmChoice): JobLlm {
    return resolveJobLlm(this.config, choice);
  }

  forJob(llm: JobLlm): UnitModels {
    return modelsForJob(this.config, llm);
  }
}
