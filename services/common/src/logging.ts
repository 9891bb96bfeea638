import { pino } from 'pino';
import type { LogLevel } from './config.js';
import { currentRequestId } from './request-context.js';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout belongs to command output such as `--json`). Secrets are
 * redacted by path so that a config object can be logged whole. A line written while serving a request
 * carries that request's id (see request-context.ts), whichever module wrote it.
 */
export function createLogger(service: string, level: LogLevel = 'info'): Logger {
  return pino(
    {
      name: service,
      level,
      redact: {
        paths: ['hfToken', '*.hfToken', 'databaseUrl', '*.databaseUrl', 'authorization'],
        censor: '[redacted]',
      },
      base: { service },
      mixin: () => {
        const requestId = currentRequestId();
        return requestId ? { requestId } : {};
      },
    },
    pino.destination(2),
  );
}
