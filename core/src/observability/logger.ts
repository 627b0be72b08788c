import winston from 'winston';

/**
 * A component's logger: one JSON object per line on stderr (stdout belongs to command output), with
 * `component` on every line. `logger.child({ requestId })` threads a request through components.
 */
export type Logger = winston.Logger;

const LEVELS = new Set(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

/** `LHB_LOG_LEVEL` when it names a winston level, else `info`. */
export function logLevel(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = env['LHB_LOG_LEVEL']?.toLowerCase();
  return wanted !== undefined && LEVELS.has(wanted) ? wanted : 'info';
}

export function createLogger(component: string, options: { level?: string } = {}): Logger {
  return winston.createLogger({
    level: options.level ?? logLevel(),
    defaultMeta: { component },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: [...LEVELS] })],
  });
}
