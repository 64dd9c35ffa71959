import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void;

/**
 * A small read-only HTTP listener (opt-in: --metrics-listen on a peer,
 * --control-listen on a mount): Prometheus text at /metrics, and whatever
 * other GET routes the caller adds. Nothing it serves changes anything.
 */
export async function startHttpListener(host: string, port: number, registry: Registry, routes: Record<string, Route>, log: Logger): Promise<{ port: number; close: () => Promise<void> }> {
  const all: Record<string, Route> = {
    ...routes,
    '/metrics': async (_req, res) => {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(text);
    },
  };
  const server = http.createServer((req, res) => {
    // A request target is anything a client sends: it is taken apart without anything that can throw.
    const path = (req.url ?? '/').split('?')[0]!;
    const route = Object.hasOwn(all, path) ? all[path] : undefined;
    if (req.method !== 'GET' || !route) {
      res.writeHead(req.method === 'GET' ? 404 : 405, { 'content-type': 'text/plain' });
      res.end(`${req.method === 'GET' ? 'no such page' : 'read-only: GET only'}; try ${Object.keys(all).join(', ')}\n`);
      return;
    }
    Promise.resolve().then(() => route(req, res)).catch((err: Error) => {
      log.warn({ err: err.message, path }, 'HTTP listener: request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${err.message}\n`);
    });
  });
  // Slow or idle clients cannot pin it: every request is bounded.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.warn({ err: err.message }, 'HTTP listener error'));
  server.on('clientError', (_err, socket) => socket.destroy());
  const actual = (server.address() as AddressInfo).port;
  log.info({ host, port: actual, routes: Object.keys(all) }, 'HTTP listener up');
  return {
    port: actual,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
