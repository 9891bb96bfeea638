/** The parts of the OpenAI chat-completions protocol Loupe uses. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatRequest {
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Ask for log-probabilities of each completion token, with this many alternatives. */
  topLogprobs?: number;
  /** `json_object` asks servers that support it to constrain the reply to JSON. */
  responseFormat?: 'json_object';
}

export interface TopLogprob {
  token: string;
  logprob: number;
}

/** One completion token with its log-probability and the most likely alternatives at that position. */
export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResult {
  content: string;
  /** null when the server gave no log-probabilities (not every server does). */
  logprobs: TokenLogprob[] | null;
  usage: TokenUsage;
  /** 'server' when the reply carried `usage`; 'estimated' when counted here with the GPT tokenizer. */
  usageSource: 'server' | 'estimated';
  /** HTTP attempts this call took (1 = no retry). */
  attempts: number;
  model: string;
}

/** Anything that answers chat requests: the HTTP client, or a stand-in in tests. */
export interface ChatModel {
  readonly model: string;
  chat(request: ChatRequest, meter?: UsageMeter): Promise<ChatResult>;
}

/** Running totals of LLM use, kept per unit (cost per unit) and per process. */
export interface UsageTotals {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  retries: number;
}

export class UsageMeter {
  private totals: UsageTotals = { calls: 0, promptTokens: 0, completionTokens: 0, retries: 0 };

  constructor(private readonly parent?: UsageMeter) {}

  record(result: Pick<ChatResult, 'usage' | 'attempts'>): void {
    this.totals.calls += 1;
    this.totals.promptTokens += result.usage.promptTokens;
    this.totals.completionTokens += result.usage.completionTokens;
    this.totals.retries += result.attempts - 1;
    this.parent?.record(result);
  }

  /** A meter for one unit whose calls also count towards this one. */
  child(): UsageMeter {
    return new UsageMeter(this);
  }

  snapshot(): UsageTotals {
    return { ...this.totals };
  }
}
