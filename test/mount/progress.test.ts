import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { progressEventOf, progressReporter } from '../../src/mount/recovery/progress.js';

/** The progress log lines a background mount writes are the ones its waiting parent reads back to draw the bar. */
describe('progress lines', () => {
  it('read back as the events that wrote them, and nothing else reads as one', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const log = pino({ level: 'info' }, sink);
    const notATerminal = { isTTY: false } as NodeJS.WriteStream;
    const reporter = progressReporter(log, notATerminal);
    reporter.start('catch-up east', 10, 'changes');
    reporter.stop();
    log.info({ job: 'catch-up east', done: 3 }, 'something else');
    const events = lines.map((l) => progressEventOf(JSON.parse(l) as Record<string, unknown>));
    expect(events).toEqual([
      { kind: 'started', job: 'catch-up east', total: 10, unit: 'changes' },
      { kind: 'finished', job: 'catch-up east', done: 0 },
      null,
    ]);
  });

  it('are written under --log-level warn too: a background mount\'s waiting parent sees a long resync alive by them', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const log = pino({ level: 'warn' }, sink);
    const reporter = progressReporter(log, { isTTY: false } as NodeJS.WriteStream);
    reporter.start('resync east -> west', 100, 'bytes');
    reporter.stop();
    log.info('an ordinary info line stays out');
    expect(lines.map((l) => progressEventOf(JSON.parse(l) as Record<string, unknown>)?.kind)).toEqual(['started', 'finished']);
  });
});
