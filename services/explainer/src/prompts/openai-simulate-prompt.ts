import type { ChatMessage } from '../llm/types.js';
import type { ActivationRecord } from '../records/records.js';
import { FEW_SHOT_EXAMPLES, type FewShotExample } from './few-shot.js';
import { displayToken, normalizeActivations } from './format.js';

// The layout of OpenAI's simulation prompts (openai/automated-interpretability, explanations/simulator.py):
// the same instructions, "Neuron N" headings, the "the main thing this neuron does is find" prefix,
// `token<TAB>activation` lines between <start> and <end>, and "unknown" in the slots to predict.
// Deliberate differences, each so the prompt works on any OpenAI-compatible server:
// - the few-shot examples are Loupe's own (prompts/few-shot.ts), not OpenAI's published set;
// - the all-at-once prompt is plain concatenation (their PromptFormat.NONE), without the
//   `<|endofprompt|>` marker that only OpenAI's instruction-following models know;
// - tokens are shown with TAB and newline escaped (displayToken), so a token that is itself a TAB or a
//   newline cannot break the line format (their code notes this as a known problem).

export const OPENAI_EXPLANATION_PREFIX = 'the main thing this neuron does is find';
export const UNKNOWN_ACTIVATION = 'unknown';

const ALL_AT_ONCE_SYSTEM = `We're studying neurons in a neural network.
Each neuron looks for some particular thing in a short document.
Look at summary of what the neuron does, and try to predict how it will fire on each token.

The activation format is token<tab>activation, activations go from 0 to 10, "unknown" indicates an unknown activation. Most activations will be 0.
`;

/** Records as `\n<start>\n…\n<end>\n`; tokens before `revealFrom[i]` show "unknown" instead of a value. */
export function formatOpenAiRecords(
  records: readonly ActivationRecord[],
  revealFrom?: readonly number[],
): string {
  const normalized = normalizeActivations(records);
  const blocks = records.map((record, i) =>
    record.tokens
      .map((token, j) => {
        const shown = j < (revealFrom?.[i] ?? 0) ? UNKNOWN_ACTIVATION : String(normalized[i][j]);
        return `${displayToken(token)}\t${shown}`;
      })
      .join('\n'),
  );
  return `\n<start>\n${blocks.join('\n<end>\n<start>\n')}\n<end>\n`;
}

/** Every token's slot "unknown", as the all-at-once simulator asks the model to fill them. */
export function formatUnknownSequence(tokens: readonly string[]): string {
  return `\n<start>\n${tokens.map((t) => `${displayToken(t)}\t${UNKNOWN_ACTIVATION}`).join('\n')}\n<end>\n`;
}

const heading = (n: number, explanation: string) =>
  `\n\nNeuron ${n}\nExplanation of neuron ${n} behavior: ${OPENAI_EXPLANATION_PREFIX} ${explanation.trim()}`;

// OpenAI hides the first few values of some few-shot records so the model has seen "unknown" slots
// followed by real values; a third of each record plays that part here.
const revealIndices = (example: FewShotExample) =>
  example.records.map((r) => Math.floor(r.tokens.length / 3));

/**
 * The all-at-once prompt (their ExplanationNeuronSimulator): few-shot neurons with their activations,
 * then the explanation and the sequence with every slot "unknown". The model's distribution at each
 * "unknown" comes from the prompt's own log-probabilities (echo), so each prediction sees only the tokens
 * up to and including its own, never later ones.
 */
export function allAtOnceSimulationPrompt(explanation: string, tokens: readonly string[]): string {
  let prompt = ALL_AT_ONCE_SYSTEM;
  FEW_SHOT_EXAMPLES.forEach((example, i) => {
    prompt += heading(i + 1, example.explanation);
    prompt += `\nActivations: ${formatOpenAiRecords(example.records, revealIndices(example))}\n`;
  });
  prompt += heading(FEW_SHOT_EXAMPLES.length + 1, explanation);
  prompt += `\nActivations: ${formatUnknownSequence(tokens)}`;
  return prompt;
}

const SINGLE_TOKEN_SYSTEM = `We're studying neurons in a neural network. Each neuron looks for some particular thing in a short document. Look at  an explanation of what the neuron does, and try to predict its activations on a particular token.

The activation format is token<tab>activation, and activations range from 0 to 10. Most activations will be 0.

`;

const SINGLE_TOKEN_BRIDGE =
  "Now, we're going predict the activation of a new neuron on a single token, following the same rules as the examples above. Activations still range from 0 to 10.";

const singleTokenAsk = (n: number, explanation: string, tokens: readonly string[]) => `
Neuron ${n}
Explanation of neuron ${n} behavior: ${OPENAI_EXPLANATION_PREFIX} ${explanation.trim()}
Text:
${tokens.join('')}

Last token in the text:
${tokens[tokens.length - 1]}

Last token activation, considering the token in the context in which it appeared in the text:
`;

// The worked single-token example: " river" (6.8 of a 6.8 maximum) in Loupe's third few-shot record.
const SINGLE_TOKEN_EXAMPLE = { record: FEW_SHOT_EXAMPLES[2].records[0], index: 4 };

/**
 * The token-by-token prompt (their ExplanationTokenByTokenSimulator) as chat messages: few-shot neurons,
 * a worked single-token example, then the text up to the token to predict. The reply's first token holds
 * the distribution over "0"…"10". As in their code, the worked example is headed by the explanation
 * being simulated, not by the example's own.
 */
export function singleTokenSimulationMessages(
  explanation: string,
  tokens: readonly string[],
  index: number,
): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: SINGLE_TOKEN_SYSTEM }];
  FEW_SHOT_EXAMPLES.forEach((example, i) => {
    messages.push({
      role: 'user',
      content: `Neuron ${i + 1}\nExplanation of neuron ${i + 1} behavior: ${OPENAI_EXPLANATION_PREFIX} ${example.explanation}\n`,
    });
    messages.push({ role: 'assistant', content: `Activations: ${formatOpenAiRecords(example.records)}\n\n` });
  });
  messages.push({ role: 'system', content: SINGLE_TOKEN_BRIDGE });
  const { record, index: exampleIndex } = SINGLE_TOKEN_EXAMPLE;
  const n = FEW_SHOT_EXAMPLES.length;
  messages.push({
    role: 'user',
    content: singleTokenAsk(n + 1, explanation, record.tokens.slice(0, exampleIndex + 1)),
  });
  // Normalised against the whole example record's maximum, as theirs is.
  messages.push({ role: 'assistant', content: `${normalizeActivations([record])[0][exampleIndex]}\n\n` });
  messages.push({ role: 'user', content: singleTokenAsk(n + 2, explanation, tokens.slice(0, index + 1)) });
  return messages;
}
