import { describe, expect, it } from 'vitest';
import {
  allAtOnceSimulationPrompt,
  formatOpenAiRecords,
  singleTokenSimulationMessages,
} from './openai-simulate-prompt.js';

describe("OpenAI's simulation prompts", () => {
  it('formats records as their format_activation_records does, "unknown" before the revealed index', () => {
    const records = [
      { id: 'a', tokens: ['The', ' cat', '\t'], activations: [0, 4, 2] },
      { id: 'b', tokens: ['x'], activations: [8] },
    ];
    // max 8 over both records: 4 → 5, 2 → 2, 8 → 10; the TAB token is shown escaped
    expect(formatOpenAiRecords(records, [1, 0])).toBe(
      '\n<start>\nThe\tunknown\n cat\t5\n\\t\t2\n<end>\n<start>\nx\t10\n<end>\n',
    );
  });

  it('the all-at-once prompt: instructions, few-shot neurons, then every slot "unknown"', () => {
    const prompt = allAtOnceSimulationPrompt(' rivers and lakes ', ['A', ' river']);
    expect(prompt.startsWith("We're studying neurons in a neural network.\nEach neuron looks for")).toBe(
      true,
    );
    expect(prompt).toContain(
      '\n\nNeuron 1\nExplanation of neuron 1 behavior: the main thing this neuron does is find units of time',
    );
    // the first few-shot record (6 tokens) hides its first 2 values
    expect(prompt).toContain(
      '\nActivations: \n<start>\nThe\tunknown\n train\tunknown\n left\t0\n two\t0\n hours\t10\n',
    );
    expect(
      prompt.endsWith(
        '\n\nNeuron 4\nExplanation of neuron 4 behavior: the main thing this neuron does is find rivers and lakes\nActivations: \n<start>\nA\tunknown\n river\tunknown\n<end>\n',
      ),
    ).toBe(true);
  });

  it('the token-by-token messages end with the text up to the token asked about', () => {
    const messages = singleTokenSimulationMessages('rivers', ['A', ' river', ' bank'], 1);
    expect(messages.map((m) => m.role)).toEqual([
      'system',
      'user',
      'assistant',
      'user',
      'assistant',
      'user',
      'assistant',
      'system',
      'user',
      'assistant',
      'user',
    ]);
    // the worked example: " river" at 6.8 of its record's 6.8 maximum → 10
    expect(messages[9].content).toBe('10\n\n');
    expect(messages[10].content).toBe(
      '\nNeuron 5\nExplanation of neuron 5 behavior: the main thing this neuron does is find rivers\nText:\nA river\n\nLast token in the text:\n river\n\nLast token activation, considering the token in the context in which it appeared in the text:\n',
    );
  });
});
