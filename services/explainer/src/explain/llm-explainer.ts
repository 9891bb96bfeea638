import type { ChatModel, UsageMeter } from '../llm/types.js';
import { explanationMessages, parseExplanation } from '../prompts/explain-prompt.js';
import type { UnitRecords } from '../records/records.js';
import type { Explainer } from './types.js';

// Diversity between candidates comes from sampling; at 0 every candidate would be the same sentence.
const CANDIDATE_TEMPERATURE = 1;
const MAX_EXPLANATION_TOKENS = 80;

/** Explanations from a chat model: one call per candidate (not every server supports `n`). */
export class LlmExplainer implements Explainer {
  readonly model: string;

  constructor(private readonly llm: ChatModel) {
    this.model = llm.model;
  }

  async explain(records: UnitRecords, candidates: number, meter?: UsageMeter): Promise<string[]> {
    const messages = explanationMessages(records.top);
    const replies = await Promise.all(
      Array.from({ length: candidates }, () =>
        this.llm.chat(
          {
            messages,
            temperature: candidates > 1 ? CANDIDATE_TEMPERATURE : 0,
            maxTokens: MAX_EXPLANATION_TOKENS,
          },
          meter,
        ),
      ),
    );
    return replies.map((r) => parseExplanation(r.content)).filter((e) => e !== '');
  }
}
