import cliProgress from 'cli-progress';
import type { VerifyProgress } from '../mount/control/verify.js';

/**
 * How `mirrorfs verify` shows its progress on stderr (stdout keeps the report
 * alone): a bar with rate and ETA on a terminal, once the total is known (a
 * comparison with content hashes counts it beside itself), else a line of
 * entries and rate; with --json a JSON line per progress report (about one a
 * second). `at` is remembered: an interrupted verify says where to resume.
 */
export interface VerifyProgressView {
  show(p: VerifyProgress): void;
  /** The last path compared (a verify resumed with --from it loses nothing). */
  readonly at: string | null;
  stop(): void;
}

export function verifyProgressView(opts: { json: boolean }, stream: NodeJS.WriteStream = process.stderr): VerifyProgressView {
  let at: string | null = null;
  let bar: cliProgress.SingleBar | null = null;
  let lineShown = false;
  const started = Date.now();
  return {
    get at() {
      return at;
    },
    show(p) {
      at = p.at ?? at;
      if (opts.json) return void stream.write(`${JSON.stringify({ progress: p })}\n`);
      if (!stream.isTTY) return;
      if (p.totalBytes !== null && p.totalBytes > 0) {
        if (!bar) {
          if (lineShown) stream.write('\n');
          bar = new cliProgress.SingleBar(
            { format: 'verify [{bar}] {percentage}% | {value_mib}/{total_mib} MiB | {entries} entries | {differences} differing | ETA {eta_formatted}', stream, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.totalBytes, 0, payload(p));
        }
        bar.update(Math.min(p.bytes, p.totalBytes), payload(p));
        return;
      }
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      stream.write(`\rverify: ${p.entries.toLocaleString('en-US')} entries compared (${Math.round(p.entries / seconds).toLocaleString('en-US')}/s), ${p.differences} differing, ${p.phase}`);
      lineShown = true;
    },
    stop() {
      bar?.stop();
      if (lineShown && !bar) stream.write('\n');
    },
  };
}

function payload(p: VerifyProgress): Record<string, string | number> {
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  return { value_mib: mib(p.bytes), total_mib: mib(p.totalBytes ?? 0), entries: p.entries.toLocaleString('en-US'), differences: p.differences };
}
