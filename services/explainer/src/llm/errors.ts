import { LoupeError } from '@loupe/common';

/** The LLM server could not give an answer (after retries, or a reply we cannot read). */
export class LlmError extends LoupeError {
  constructor(
    message: string,
    /** HTTP status of the last attempt, when there was one. */
    readonly status?: number,
  ) {
    super(message, 'UNAVAILABLE');
  }
}
