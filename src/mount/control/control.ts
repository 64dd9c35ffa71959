import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

/**
 * The mount's control socket: a small HTTP server on a unix socket that
 * `mirrorfs status` and `mirrorfs unmount` talk to. Its path is derived from
 * the mount point, so the CLI finds it from the mount point alone.
 */

export function runDir(): string {
  return process.env.MIRRORFS_RUN_DIR ?? '/run/mirrorfs';
}

export function controlSocketPath(mountpoint: string): string {
  return join(runDir(), `mount-${createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.sock`);
}

export interface ControlHandlers {
  status: () => unknown | Promise<unknown>;
  unmount: () => Promise<void>;
  /** `mirrorfs sync`: every change so far durable on the peers (the syncfs the kernel does not pass to FUSE). */
  sync: () => Promise<unknown>;
  /** Compare (and with repair, fix) the copies; answers when done, telling its progress meanwhile; stopped by the signal. */
  verify: (opts: { repair: boolean; source?: string; content: boolean; from?: string; onProgress: (p: unknown) => void; signal: AbortSignal }) => Promise<unknown>;
}

/** A verify's progress line at most this often. */
const VERIFY_PROGRESS_MS = 1000;

const MAX_CONTROL_BODY = 64 * 1024;

export async function startControlServer(mountpoint: string, handlers: ControlHandlers): Promise<{ close: () => Promise<void> }> {
  mkdirSync(runDir(), { recursive: true, mode: 0o755 });
  const path = controlSocketPath(mountpoint);
  rmSync(path, { force: true }); // a stale socket from a process that died
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/status') {
      return void Promise.resolve(handlers.status()).then(
        (body) => reply(200, body),
        (err: Error) => reply(500, { error: err.message }),
      );
    }
    if (req.method === 'POST' && req.url === '/verify') {
      let body = '';
      req.on('data', (d: Buffer) => {
        body += d.toString();
        if (body.length > MAX_CONTROL_BODY) req.destroy();
      });
      req.on('end', () => {
        let opts: { repair?: unknown; source?: unknown; content?: unknown; from?: unknown };
        try {
          opts = body ? (JSON.parse(body) as typeof opts) : {};
        } catch {
          return reply(400, { error: 'body is not JSON' });
        }
        const source = typeof opts.source === 'string' ? opts.source : undefined;
        const from = typeof opts.from === 'string' ? opts.from : undefined;
        // The answer is JSON lines: {"progress"} about once a second, then {"report"} or {"error"}. A
        // failure before the first line is a plain 409. The verify stops if its requester goes away.
        const stop = new AbortController();
        let finished = false;
        res.once('close', () => {
          if (!finished) stop.abort();
        });
        let lastProgress = 0; // the first at once: the requester sees the verify has begun
        const line = (obj: unknown) => {
          if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          res.write(`${JSON.stringify(obj)}\n`);
        };
        let latest: unknown = null;
        const onProgress = (progress: unknown) => {
          latest = progress;
          if (Date.now() - lastProgress < VERIFY_PROGRESS_MS || res.destroyed) return;
          lastProgress = Date.now();
          line({ progress });
        };
        // Also while nothing moves (a large file hashed, a long repair): the requester's wait is bounded by silence.
        const heartbeat = setInterval(() => {
          if (latest !== null && !res.destroyed && Date.now() - lastProgress >= VERIFY_PROGRESS_MS) onProgress(latest);
        }, VERIFY_PROGRESS_MS);
        handlers.verify({ repair: opts.repair === true, source, content: opts.content !== false, from, onProgress, signal: stop.signal }).then(
          (report) => {
            finished = true;
            clearInterval(heartbeat);
            line({ report });
            res.end();
          },
          (err: Error) => {
            finished = true;
            clearInterval(heartbeat);
            if (!res.headersSent) return reply(409, { error: err.message });
            line({ error: err.message });
            res.end();
          },
        );
      });
      return;
    }
    if (req.method === 'POST' && req.url === '/sync') {
      handlers.sync().then(
        (body) => reply(200, body),
        (err: Error) => reply(409, { error: err.message }),
      );
      return;
    }
    if (req.method === 'POST' && req.url === '/unmount') {
      reply(202, { unmounting: true });
      void handlers.unmount();
      return;
    }
    reply(404, { error: `no route ${req.method} ${req.url}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rmSync(path, { force: true });
      }),
  };
}

/**
 * Ask a mount to verify its copies: `onLine` gets each progress line as it comes; resolves with
 * the status and the last line ({report} or {error}), or undefined when no mount process answers
 * or nothing came for idleMs. Closing the request (`cancel`) stops the verify in the mount.
 */
export function verifyRequest(mountpoint: string, body: unknown, idleMs: number, onLine: (line: { progress?: unknown }) => void): { answer: Promise<{ status: number; body: unknown } | undefined>; cancel: () => void } {
  let req: http.ClientRequest;
  const answer = new Promise<{ status: number; body: unknown } | undefined>((resolve) => {
    req = http.request({ socketPath: controlSocketPath(mountpoint), method: 'POST', path: '/verify', timeout: idleMs }, (res) => {
      res.setEncoding('utf8'); // a character split between two pieces is put together
      // The mount gone half way (no end): no answer, said as such, not a wait without end.
      res.once('close', () => {
        if (!res.complete) resolve(undefined);
      });
      let text = '';
      let last: unknown = undefined;
      res.on('data', (d: string) => {
        text += d;
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
          const lineText = text.slice(0, nl);
          text = text.slice(nl + 1);
          try {
            last = JSON.parse(lineText);
          } catch {
            continue;
          }
          if (last && typeof last === 'object' && 'progress' in last) onLine(last as { progress: unknown });
        }
      });
      res.on('end', () => {
        if (text.trim() !== '') {
          try {
            last = JSON.parse(text);
          } catch {
            last = text;
          }
        }
        resolve({ status: res.statusCode ?? 0, body: last });
      });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
    req.end(JSON.stringify(body));
  });
  return { answer, cancel: () => req.destroy() };
}

/** Ask a mount's control socket; undefined when no mount process answers. Bounded by timeoutMs. */
export function controlRequest(mountpoint: string, method: 'GET' | 'POST', route: string, timeoutMs = 5000, body?: unknown): Promise<{ status: number; body: unknown } | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: controlSocketPath(mountpoint), method, path: route, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
