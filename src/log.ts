import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one way mirrorfs logs: pino JSON (on stderr, so a command's own output on
 * stdout stays clean for scripts). Level from MIRRORFS_LOG_LEVEL, default info.
 */
export function createLogger(name: string, level = process.env.MIRRORFS_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name, pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}

/** Write out buffered log lines (before process.exit, which would drop them); bounded to 2 s. */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A logger that drops everything, for library use and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
