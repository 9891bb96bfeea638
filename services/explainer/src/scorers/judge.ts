import type { ChatMessage, ChatModel, UsageMeter } from '../llm/types.js';
import { FEW_SHOT_EXAMPLES } from '../prompts/few-shot.js';
import { BaselineSimulator } from '../simulate/baseline-simulator.js';

/** One example shown to a judge: the text as tokens, some of them optionally highlighted. */
export interface JudgedExample {
  tokens: readonly string[];
  highlighted?: readonly number[];
}

export type JudgeTask = 'detection' | 'fuzzing';

/** Answers yes/no for each example of a batch; null for a batch whose reply could not be read. */
export interface Judge {
  readonly model: string;
  judge(
    task: JudgeTask,
    explanation: string,
    examples: readonly JudgedExample[],
    meter?: UsageMeter,
  ): Promise<{ answers: boolean[] } | { failure: string }>;
}

const QUESTIONS: Record<JudgeTask, string> = {
  detection:
    'For each numbered example, answer 1 if the unit would fire somewhere in the text given the explanation, else 0.',
  fuzzing:
    'In each numbered example some tokens are marked <<like this>>. Answer 1 if the marked tokens are exactly the kind of tokens the explanation says the unit fires on, else 0.',
};

export const HIGHLIGHT_OPEN = '<<';
export const HIGHLIGHT_CLOSE = '>>';

export function renderExample(example: JudgedExample): string {
  const marked = new Set(example.highlighted ?? []);
  return example.tokens
    .map((t, i) => (marked.has(i) ? `${HIGHLIGHT_OPEN}${t}${HIGHLIGHT_CLOSE}` : t))
    .join('')
    .replace(/\n/g, ' ');
}

const systemPrompt = (task: JudgeTask) =>
  `We are studying units (neurons or learned features) of a language model. ${QUESTIONS[task]} Reply with JSON only: {"answers":[1,0,...]}, one answer per example in order.`;

const askFor = (explanation: string, examples: readonly JudgedExample[]) =>
  `Explanation: ${explanation}\n${examples.map((e, i) => `Example ${i + 1}: ${renderExample(e)}`).join('\n')}`;

/**
 * A worked exchange before the real question, as delphi's prompts carry few-shot examples: Loupe's own
 * example records (the river unit's two windows are positives, two windows of other units negatives),
 * highlighted for fuzzing as the task would (the firing tokens, or arbitrary ones).
 */
function fewShot(task: JudgeTask): ChatMessage[] {
  const [time, quote, river] = FEW_SHOT_EXAMPLES;
  const firing = (activations: readonly number[]) => activations.flatMap((a, i) => (a > 0 ? [i] : []));
  const examples: JudgedExample[] = [
    { tokens: river.records[0].tokens, highlighted: firing(river.records[0].activations) },
    { tokens: time.records[0].tokens, highlighted: [1, 2] },
    { tokens: river.records[1].tokens, highlighted: firing(river.records[1].activations) },
    { tokens: quote.records[0].tokens, highlighted: [5] },
  ];
  const shown = task === 'detection' ? examples.map((e) => ({ tokens: e.tokens })) : examples;
  return [
    { role: 'user', content: askFor(river.explanation, shown) },
    { role: 'assistant', content: JSON.stringify({ answers: [1, 0, 1, 0] }) },
  ];
}

/**
 * Detection and fuzzing as asked of a chat model (EleutherAI, "Automatically Interpreting Millions of
 * Features in LLMs"): a few-shot exchange, then several examples per call, answers as a JSON list of 0/1.
 */
export class LlmJudge implements Judge {
  readonly model: string;

  constructor(private readonly llm: ChatModel) {
    this.model = llm.model;
  }

  async judge(task: JudgeTask, explanation: string, examples: readonly JudgedExample[], meter?: UsageMeter) {
    const reply = await this.llm.chat(
      {
        messages: [
          { role: 'system', content: systemPrompt(task) },
          ...fewShot(task),
          { role: 'user', content: askFor(explanation, examples) },
        ],
        temperature: 0,
        responseFormat: 'json_object',
        maxTokens: 16 + examples.length * 4,
      },
      meter,
    );
    return readAnswers(reply.content, examples.length);
  }
}

export function readAnswers(content: string, count: number): { answers: boolean[] } | { failure: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.trim().replace(/^```(?:json)?\s*|\s*```$/g, ''));
  } catch {
    return { failure: `reply is not JSON: ${content.slice(0, 200)}` };
  }
  const answers = Array.isArray(parsed) ? parsed : (parsed as { answers?: unknown })?.answers;
  if (!Array.isArray(answers) || answers.length !== count)
    return { failure: `expected {"answers":[...]} with ${count} answers, got ${content.slice(0, 200)}` };
  if (!answers.every((a) => a === 0 || a === 1 || a === true || a === false))
    return { failure: `answers must be 0 or 1, got ${JSON.stringify(answers)}` };
  return { answers: answers.map((a) => a === 1 || a === true) };
}

/** The baseline judge reads the baseline simulator: fires = predicts activation on a (highlighted) token. */
export class BaselineJudge implements Judge {
  readonly model: string;
  private readonly simulator = new BaselineSimulator();

  constructor() {
    this.model = this.simulator.model;
  }

  async judge(task: JudgeTask, explanation: string, examples: readonly JudgedExample[]) {
    const outcomes = await this.simulator.simulate(
      explanation,
      examples.map((e) => e.tokens),
    );
    return {
      answers: outcomes.map((o, i) => {
        const values = o.ok ? o.values : [];
        if (task === 'detection') return values.some((v) => v > 0);
        const marked = examples[i].highlighted ?? [];
        return marked.length > 0 && marked.every((j) => values[j] > 0);
      }),
    };
  }
}
