import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * JSON logs. Secrets and message content never go in at info level: the redact list is a
 * backstop for mistakes, not the mechanism.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'companion-api' },
    redact: {
      paths: ['authorization', '*.authorization', 'headers.authorization', '*.apiKey', 'apiKey'],
      censor: '[redacted]',
    },
  });
}

/** For tests and tools that want quiet. */
export const silentLogger: Logger = pino({ level: 'silent' });
