import http2 from 'node:http2';
import { testMountKeyPair } from './tls.js';

export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the server reset the stream instead of answering. */
  reset?: string;
}

/** One raw HTTP/2 request, bypassing PeerClient, for malformed-input tests. Bounded by timeoutMs. */
/** `clientCert`: the key pair presented over TLS (default the test mount's; null presents none). */
export function rawRequest(url: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number; clientCert?: { key: string; cert: string } | null }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const clientCert = opts.clientCert === undefined ? testMountKeyPair() : opts.clientCert;
    // The server's certificate is not checked here: these requests test the server.
    const session = http2.connect(url, { ...(clientCert ?? {}), rejectUnauthorized: false });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`raw request ${opts.path} timed out`));
    }, opts.timeoutMs ?? 10_000);
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const req = session.request({ ':method': opts.method ?? 'POST', ':path': opts.path, ...(opts.headers ?? {}) });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => {
      headers = h;
      status = Number(h[':status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    const finish = (reset?: string) => {
      clearTimeout(timer);
      session.close();
      resolve({ status, headers, body: Buffer.concat(chunks), reset });
    };
    req.on('end', () => finish());
    req.on('error', (err) => finish(String((err as Error).message)));
    req.end(opts.body);
  });
}
