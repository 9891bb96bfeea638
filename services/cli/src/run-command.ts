import { LoupeError } from '@loupe/common';

/**
 * Runs one command: user mistakes print their message on stderr and exit 2; anything else is a bug,
 * printed with its stack, exit 1.
 */
export async function runCommand(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof LoupeError) {
      process.stderr.write(`loupe: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`loupe: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  }
}

/** Writes one JSON document to stdout, waiting for the pipe to drain (large logits). */
export function printJson(value: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(`${JSON.stringify(value)}\n`, (error) => (error ? reject(error) : resolve()));
  });
}
