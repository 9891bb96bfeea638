import {
  type ChatModel,
  CompletionsClient,
  classificationScore,
  explainUnit,
  JsonSimulator,
  LineLogprobSimulator,
  LlmClient,
  LlmExplainer,
  LlmJudge,
  OpenAiAllAtOnceSimulator,
  OpenAiTokenByTokenSimulator,
  splitForScoring,
  syntheticUnit,
  UsageMeter,
} from '@loupe/explainer';
import { type LlmReply, lineReply, type RecordedRequest, startLlmServer } from '../support/llm-server.js';
import { fmt, printTable, type Row } from './measure.js';

// Explainer cost per unit for each scoring method, against OpenAI's procedure (one explanation call and
// one simulation call per scored sequence), and units per minute against the local chat server with a
// latency model: 200 ms per call plus 2 ms per completion token (about a hosted model's speed).
// Token counts are the client's own (o200k_base) since the server sends no usage.

const UNITS = 6;
const RECORDS = 20; // top and random each; OpenAI's split: 5 explain, 5 + 5 choose, 5 + 5 score
const LENGTH = 32;
const CONCURRENCY = 8;
const FIXED_MS = 200;
const MS_PER_COMPLETION_TOKEN = 2;

/** The quoted words of the explanation a prompt asks about (Loupe's prompts or OpenAI's). */
function namedTokens(text: string): Set<string> {
  const explanation = /(?:Explanation: |behavior: the main thing this neuron does is find )(.*)\n/g;
  const last = [...text.matchAll(explanation)].at(-1)?.[1] ?? '';
  return new Set([...last.matchAll(/"([^"]*)"/g)].map((m) => m[1]));
}

/**
 * OpenAI's all-at-once simulator over /completions: at each "unknown" slot after the last <start>, the
 * same belief as above about the token before the TAB.
 */
function promptDistribution(tokens: readonly string[], index: number): Record<string, number> | undefined {
  if (tokens[index] !== 'unknown' || tokens[index - 1] !== '\t') return undefined;
  const prompt = tokens.join('');
  const named = namedTokens(prompt);
  const lineStart = tokens.lastIndexOf('\n', index);
  const token = tokens.slice(lineStart + 1, index - 1).join('');
  return named.has(token.trim()) ? { '10': 0.7, '8': 0.3 } : { '0': 0.9, '1': 0.1 };
}

/** A model that answers every request the explainer makes, believing any quoted word. */
function respond(request: RecordedRequest): LlmReply {
  const text = request.lastUser;
  const named = namedTokens(text);
  let reply: LlmReply;
  const single = /Last token in the text:\n([\s\S]*?)\n\nLast token activation/.exec(text);
  if (single) {
    // OpenAI's token-by-token simulator: one reply token carrying the distribution over 0-10
    const top = Object.entries(named.has(single[1].trim()) ? { '10': 0.7, '8': 0.3 } : { '0': 0.9, '1': 0.1 })
      .map(([token, p]) => ({ token, logprob: Math.log(p) }))
      .sort((a, b) => b.logprob - a.logprob);
    reply = { content: top[0].token, logprobs: [{ ...top[0], top_logprobs: top }] };
  } else if (request.body.logprobs) {
    const tokens = text.split('\nTokens:\n')[1].split('\n');
    reply = lineReply(
      tokens,
      tokens.map(
        (t): Record<string, number> =>
          named.has(t.trim()) ? { '10': 0.7, '8': 0.3 } : { '0': 0.9, '1': 0.1 },
      ),
    );
  } else if (/^Example 1:/m.test(text)) {
    const examples = text.split('\n').filter((l) => /^Example \d+:/.test(l));
    reply = {
      content: JSON.stringify({
        answers: examples.map((e) => ([...named].some((n) => e.includes(n)) ? 1 : 0)),
      }),
    };
  } else if (request.body.response_format) {
    const { sequences } = JSON.parse(text.slice(text.indexOf('\n') + 1));
    reply = {
      content: JSON.stringify({
        sequences: sequences.map((s: { tokens: string[] }) => ({
          activations: s.tokens.map((token) => ({ token, activation: named.has(token.trim()) ? 10 : 0 })),
        })),
      }),
    };
  } else reply = { content: 'Explanation: the word "river".' };
  const content = 'content' in reply ? reply.content : '';
  // ~4 characters per token for the latency model; the client counts real tokens for the table
  return { ...reply, usage: null, delayMs: FIXED_MS + (MS_PER_COMPLETION_TOKEN * content.length) / 4 };
}

export async function explainerBench(): Promise<void> {
  const server = await startLlmServer({
    respond,
    promptDistribution,
    completionUsage: false,
    completionDelayMs: () => FIXED_MS + MS_PER_COMPLETION_TOKEN,
  });
  try {
    const client: ChatModel = new LlmClient({
      baseUrl: server.url,
      model: 'bench',
      concurrency: CONCURRENCY,
      timeoutMs: 60_000,
    });
    const units = Array.from({ length: UNITS }, (_, i) =>
      syntheticUnit({ seed: i, firesOn: ' river', records: RECORDS, length: LENGTH }),
    );
    const scored = splitForScoring(units[0]).score;
    const sequencesPerUnit = scored.top.length + scored.random.length;
    const completions = new CompletionsClient({
      baseUrl: server.url,
      model: 'bench',
      concurrency: CONCURRENCY,
      timeoutMs: 60_000,
    });
    const methods = {
      'simulation, openai-all-at-once (per sequence, echo)': (u: (typeof units)[0], meter: UsageMeter) =>
        explainUnit(u, {
          explainer: new LlmExplainer(client),
          simulator: new OpenAiAllAtOnceSimulator(completions),
          meter,
        }),
      'simulation, openai-token-by-token (per token)': (u: (typeof units)[0], meter: UsageMeter) =>
        explainUnit(u, {
          explainer: new LlmExplainer(client),
          simulator: new OpenAiTokenByTokenSimulator(client),
          meter,
        }),
      'simulation, line-logprobs (per sequence)': (u: (typeof units)[0], meter: UsageMeter) =>
        explainUnit(u, {
          explainer: new LlmExplainer(client),
          simulator: new LineLogprobSimulator(client),
          meter,
        }),
      'simulation, json (batched)': (u: (typeof units)[0], meter: UsageMeter) =>
        explainUnit(u, { explainer: new LlmExplainer(client), simulator: new JsonSimulator(client), meter }),
      detection: async (u: (typeof units)[0], meter: UsageMeter) => {
        const { explain, score } = splitForScoring(u);
        const [e] = await new LlmExplainer(client).explain(explain, 1, meter);
        return classificationScore('detection', e, score, { judge: new LlmJudge(client), meter });
      },
      fuzzing: async (u: (typeof units)[0], meter: UsageMeter) => {
        const { explain, score } = splitForScoring(u);
        const [e] = await new LlmExplainer(client).explain(explain, 1, meter);
        return classificationScore('fuzzing', e, score, { judge: new LlmJudge(client), meter });
      },
    };
    const rows: Row[] = [];
    let openAiTokens = 0;
    for (const [name, run] of Object.entries(methods)) {
      const meter = new UsageMeter();
      const started = performance.now();
      await Promise.all(units.map((u) => run(u, meter.child())));
      const minutes = (performance.now() - started) / 60_000;
      const usage = meter.snapshot();
      const tokens = (usage.promptTokens + usage.completionTokens) / UNITS;
      if (name.startsWith('simulation, openai-all-at-once')) openAiTokens = tokens;
      rows.push({
        measure: `${name}: calls / unit`,
        value: fmt(usage.calls / UNITS, 1),
        reference: `${1 + sequencesPerUnit} (OpenAI: 1 + one per sequence)`,
        ratio: fmt(usage.calls / UNITS / (1 + sequencesPerUnit), 2),
      });
      rows.push({
        measure: `${name}: prompt+completion tokens / unit`,
        value: `${fmt(usage.promptTokens / UNITS)} + ${fmt(usage.completionTokens / UNITS)}`,
        reference: openAiTokens ? `${fmt(openAiTokens)} (openai-all-at-once)` : '',
        ratio: openAiTokens ? fmt(tokens / openAiTokens, 2) : '',
      });
      rows.push({
        measure: `${name}: units / minute`,
        value: fmt(UNITS / minutes, 1),
        reference: `${CONCURRENCY} requests in flight`,
        ratio: '',
      });
    }
    printTable(
      `Explainer: ${UNITS} units, ${sequencesPerUnit} scored sequences of ${LENGTH} tokens each, local server (${FIXED_MS} ms + ${MS_PER_COMPLETION_TOKEN} ms/token)`,
      rows,
    );
  } finally {
    await server.close();
  }
}

// Also runnable alone: node tests/dist/bench/explainer.js
if (process.argv[1]?.endsWith('bench/explainer.js')) await explainerBench();
