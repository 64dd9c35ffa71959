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

/**
 * A wire path as `--from` takes it back: a byte that is not UTF-8 (an escaped byte of the wire
 * form) and a control character as \xNN, a backslash as \\. Printed as it is, a name's odd
 * bytes would come back from the command line as U+FFFD and resume at the wrong place, and its
 * control characters would reach the terminal.
 */
export function resumeForm(wire: string): string {
  let out = '';
  for (const ch of wire) {
    const c = ch.charCodeAt(0);
    if (ch === '\\') out += '\\\\';
    else if (c >= 0xdc80 && c <= 0xdcff) out += `\\x${(c - 0xdc00).toString(16)}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

/**
 * `--from` as given, as the wire path the mount compares: \xNN is a byte (80-ff: a byte that is
 * not UTF-8), \\ a backslash, the rest as it is; relative to the mount point, or absolute under
 * one of `mountpoints` (the path as given and as resolved: a symlink to the mount names it too);
 * `.` and empty components dropped (a/./b, a//b, a/ are a/b). Throws, saying why, for a path
 * outside the mount, one with `..` (where it leads is not the walk's business), or the mount
 * point itself (no `--from` compares everything).
 */
export function parseFromOption(text: string, mountpoints: readonly string[] = []): string {
  const decoded = text.replace(/\\\\|\\x([0-9a-fA-F]{2})/g, (match, hex: string | undefined) => {
    if (hex === undefined) return '\\';
    const byte = parseInt(hex, 16);
    return String.fromCharCode(byte >= 0x80 ? 0xdc00 + byte : byte);
  });
  const partsOf = (path: string) => path.split('/').filter((p) => p !== '' && p !== '.');
  let parts = partsOf(decoded);
  if (parts.includes('..')) throw new Error(`--from ${JSON.stringify(text)}: ".." is not taken; give the path relative to the mount point as verify prints it`);
  if (decoded.startsWith('/')) {
    const root = mountpoints.map(partsOf).find((r) => r.length <= parts.length && r.every((p, i) => p === parts[i]));
    if (!root) throw new Error(`--from ${JSON.stringify(text)}: an absolute path must be inside the mount point${mountpoints.length > 0 ? ` ${mountpoints[0]}` : ''}; or give it relative to the mount point`);
    parts = parts.slice(root.length);
  }
  if (parts.length === 0) throw new Error(`--from ${JSON.stringify(text)} names the mount point itself: leave --from out to compare everything`);
  return parts.join('/');
}
