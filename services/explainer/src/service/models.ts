import { ConfigError, type Logger, type LoupeConfig } from '@loupe/common';
import { Inject, Injectable } from '@nestjs/common';
import type { JobLlm } from '../jobs/job-store.js';
import type { UnitModels } from '../jobs/score-unit.js';
import { type LlmPrices, pricesFromConfig } from '../llm/cost.js';
import { type EmbeddingsClient, embeddingsFromConfig } from '../llm/embeddings.js';
import { llmOptionsFromConfig } from '../llm/options.js';
import { modelsForJob, parseSimulatorMethod, resolveJobLlm, selectModels } from '../select-models.js';
import { CONFIG, LOGGER } from './tokens.js';
import type { LlmChoice } from './wire.js';

/** Explainer, simulator and judge for a request: its LLM choice over the service's configuration. */
@Injectable()
export class Models {
  private readonly embeddings: EmbeddingsClient | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.embeddings = embeddingsFromConfig(config);
  }

  /**
   * The explanation's embedding for semantic search, or undefined when no embeddings server is
   * configured or it failed: an explanation is worth keeping even when it cannot be embedded.
   */
  async embed(text: string): Promise<number[] | undefined> {
    if (!this.embeddings) return undefined;
    try {
      return (await this.embeddings.embed([text]))[0];
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'explanation stored without an embedding');
      return undefined;
    }
  }

  /** The query's embedding; errors reach the caller, since the search cannot run without it. */
  async embedQuery(text: string): Promise<number[]> {
    if (!this.embeddings)
      throw new ConfigError('semantic search needs an embeddings server: set LOUPE_EMBEDDINGS_BASE_URL');
    return (await this.embeddings.embed([text]))[0];
  }

  forChoice(choice: LlmChoice): UnitModels {
    const resolved = resolveJobLlm(this.config, choice);
    const llm = resolved.baseUrl
      ? llmOptionsFromConfig(this.config, {
          baseUrl: resolved.baseUrl,
          ...(resolved.model ? { model: resolved.model } : {}),
        })
      : undefined;
    return selectModels(llm, resolved.simulator ? parseSimulatorMethod(resolved.simulator) : undefined);
  }

  /** Validated now, so a bad choice fails the request rather than every unit of the job. */
  resolveForJob(choice: LlmChoice): JobLlm {
    return resolveJobLlm(this.config, choice);
  }

  /** The configured LLM prices, stored with each new job. */
  prices(): LlmPrices {
    return pricesFromConfig(this.config);
  }

  forJob(llm: JobLlm): UnitModels {
    return modelsForJob(this.config, llm);
  }
}
