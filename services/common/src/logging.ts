import { pino } from 'pino';
import type { LogLevel } from './config.js';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout belongs to command output such as `--json`). Secrets are
 * redacted by path so that a config object can be logged whole.
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
    },
    pino.destination(2),
  );
}
