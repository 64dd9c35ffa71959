import cliProgress from 'cli-progress';
import type { Logger } from '../../log.js';

/**
 * Progress of a long job at mount time (catch-up, resync): a bar on a
 * terminal (cli-progress), otherwise a log line every few seconds.
 */
export interface ProgressReporter {
  start(label: string, total: number, unit: string): void;
  update(done: number): void;
  stop(): void;
}

const LOG_EVERY_MS = 1000;

/**
 * The messages of a job's log lines. `mirrorfs mount` in the background reads
 * them back from the log file to draw its bar (progressEventOf), so writer and
 * reader share these names and this shape.
 */
export const PROGRESS_MESSAGES = { started: 'started', progress: 'progress', finished: 'finished' } as const;

export type ProgressEvent =
  | { kind: 'started'; job: string; total: number; unit: string }
  | { kind: 'progress' | 'finished'; job: string; done: number };

/** The progress event a parsed JSON log line records, or null for any other line. */
export function progressEventOf(rec: { msg?: unknown; job?: unknown; total?: unknown; unit?: unknown; done?: unknown }): ProgressEvent | null {
  if (typeof rec.job !== 'string' || !rec.job) return null;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  if (rec.msg === PROGRESS_MESSAGES.started) return { kind: 'started', job: rec.job, total: num(rec.total), unit: typeof rec.unit === 'string' ? rec.unit : '' };
  if (rec.msg === PROGRESS_MESSAGES.progress || rec.msg === PROGRESS_MESSAGES.finished) return { kind: rec.msg, job: rec.job, done: num(rec.done) };
  return null;
}

export function progressReporter(parent: Logger, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (stream.isTTY) {
    let bar: cliProgress.SingleBar | null = null;
    return {
      start(label, total, unit) {
        // A total of 0 is not known (a comparison as the trees stream in): a count and a rate, no bar.
        const format = total > 0 ? `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}` : `${label} | {value} ${unit}`;
        bar = new cliProgress.SingleBar({ format, stream, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
        bar.start(total, 0);
      },
      update: (done) => bar?.update(done),
      stop: () => bar?.stop(),
    };
  }
  let job = { label: '', total: 0, unit: '', startedAt: 0, lastLog: 0, done: 0 };
  // Also while nothing moves (one large file hashed, one long repair): a job that runs says so each second.
  let heartbeat: NodeJS.Timeout | null = null;
  const logProgress = () => {
    job.lastLog = Date.now();
    log.info({ job: job.label, done: job.done, total: job.total, unit: job.unit }, PROGRESS_MESSAGES.progress);
  };
  // Whatever --log-level says: these lines are how `mirrorfs mount` in the background sees
  // that a long resync is alive (it stops a mount whose log stays silent) and draws its bar.
  const log = parent.level === 'info' || parent.level === 'debug' || parent.level === 'trace' ? parent : parent.child({}, { level: 'info' });
  return {
    start(label, total, unit) {
      job = { label, total, unit, startedAt: Date.now(), lastLog: Date.now(), done: 0 };
      log.info({ job: label, total, unit }, PROGRESS_MESSAGES.started);
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = setInterval(() => {
        if (Date.now() - job.lastLog >= LOG_EVERY_MS) logProgress();
      }, LOG_EVERY_MS);
      heartbeat.unref();
    },
    update(done) {
      job.done = done;
      if (Date.now() - job.lastLog < LOG_EVERY_MS) return;
      logProgress();
    },
    stop() {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = null;
      log.info({ job: job.label, done: job.done, total: job.total, unit: job.unit, seconds: (Date.now() - job.startedAt) / 1000 }, PROGRESS_MESSAGES.finished);
    },
  };
}
