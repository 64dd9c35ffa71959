import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { printable } from './protocol/byte-names.js';

export type { Logger };

/** Log fields that hold a file's name. */
const PATH_FIELDS = ['path', 'from', 'to', 'target'];

/**
 * The one way mirrorfs logs, on stderr (a command's own output on stdout stays
 * clean for scripts): pino JSON by default, human-readable lines (pino-pretty)
 * when stderr is a terminal. MIRRORFS_LOG_FORMAT=json or pretty forces one.
 * Level from MIRRORFS_LOG_LEVEL, default info.
 */
export function createLogger(name: string, level = process.env.MIRRORFS_LOG_LEVEL ?? 'info'): Logger {
  let format = process.env.MIRRORFS_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') {
    process.stderr.write(`mirrorfs: MIRRORFS_LOG_FORMAT=${format} is neither json nor pretty; logging JSON\n`);
    format = 'json';
  }
  // A name that is not UTF-8 holds lone surrogates (protocol/byte-names.ts), which a log line
  // written as UTF-8 would show as U+FFFD: the path fields show those bytes as \xNN instead.
  const serializers = Object.fromEntries(PATH_FIELDS.map((k) => [k, (v: unknown) => (typeof v === 'string' ? printable(v) : v)]));
  const options = { name, level, base: { name, pid: process.pid }, serializers };
  if (format === 'pretty') {
    // Synchronous: a terminal reader wants each line as it happens, and nothing lost at exit.
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  // Synchronous too, as Node's own process.stderr is for pipes and files: an
  // asynchronous destination (minLength 0) queues each line to libuv's pool and
  // its flush() does not wait for them (sonic-boom documents flush as a no-op
  // then), so process.exit at shutdown could drop the last lines when the pool
  // was busy. mirrorfs logs events, not every operation, so the cost is small.
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** Write out anything a logger still holds, before process.exit. Both destinations are synchronous, so this only flushes pino's own buffer. */
export function flushLogger(log: Logger): Promise<void> {
  log.flush();
  return Promise.resolve();
}

/** A logger that drops everything, for library use and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
