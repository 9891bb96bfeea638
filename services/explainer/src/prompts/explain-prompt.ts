import type { ChatMessage } from '../llm/types.js';
import type { ActivationRecord } from '../records/records.js';
import { FEW_SHOT_EXAMPLES } from './few-shot.js';
import { formatRecords } from './format.js';

const SYSTEM = [
  'We are studying units (neurons or learned features) of a language model. Each unit responds to some',
  'particular thing in text. You are shown short documents as lines of `token<TAB>activation`, with',
  'activations scaled to 0-10: 0 means the unit does not respond, 10 is its strongest response.',
  'Write ONE sentence saying what the unit responds to. Do not list every token; describe the pattern.',
  'Reply with the sentence only, starting with "Explanation:".',
].join(' ');

const ask = (records: readonly ActivationRecord[]) =>
  `Activations:\n${formatRecords(records)}\n\nWhat does this unit respond to?`;

/** Chat messages that ask for one explanation of the given records, after our few-shot examples. */
export function explanationMessages(records: readonly ActivationRecord[]): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: SYSTEM }];
  for (const example of FEW_SHOT_EXAMPLES) {
    messages.push({ role: 'user', content: ask(example.records) });
    messages.push({ role: 'assistant', content: `Explanation: ${example.explanation}` });
  }
  messages.push({ role: 'user', content: ask(records) });
  return messages;
}

/**
 * The explanation out of a reply: the text after "Explanation:", first sentence only (a model that goes
 * on after its sentence is not allowed to smuggle in a list). Empty when the reply holds none.
 */
export function parseExplanation(reply: string): string {
  let text = reply.trim();
  const marker = text.search(/explanation\s*:/i);
  if (marker >= 0) text = text.slice(marker).replace(/^explanation\s*:\s*/i, '');
  text = text.split('\n')[0].trim();
  const end = text.search(/[.!?](\s|$)/);
  if (end >= 0) text = text.slice(0, end + 1);
  return text.trim();
}
