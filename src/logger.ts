/**
 * Structured JSON logs (pino). Tokens and cookies never reach a log line.
 */
import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'coupon-service' },
    redact: ['req.headers.authorization', 'req.headers.cookie', 'connectionParams.authorization'],
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
export type { Logger };
