import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LinkEmulator, LinkMode } from './emulator.js';

/**
 * The emulator's control endpoint (plain HTTP on a separate port, so tests and
 * benches can cut a link from another process):
 *   GET  /status        -> LinkStatus as JSON
 *   POST /mode/up|cut|drop -> the new status
 */
export async function startLinkControl(link: LinkEmulator, host: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const m = /^\/mode\/(up|cut|drop)$/.exec(req.url ?? '');
    if (req.method === 'GET' && req.url === '/status') return send(200, link.status());
    if (req.method === 'POST' && m) {
      link.setMode(m[1] as LinkMode);
      return send(200, link.status());
    }
    send(404, { error: `no route ${req.method} ${req.url}; use GET /status or POST /mode/up|cut|drop` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
