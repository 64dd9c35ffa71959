import { H2CClient, errors as undiciErrors } from 'undici';
import { decodeFrame, encodeFrame, type ResponseHeader } from './codec.js';
import { MirrorError, type WireError } from './errors.js';
import type { HandshakeResult, ManifestEntry, PeerStatus, ProgressResult, RequestInput } from './ops.js';
import { PROTOCOL_HEADER, PROTOCOL_VERSION, ROUTES } from './version.js';

export interface PeerClientOptions {
  /** Name used in logs and errors ("east"). */
  name?: string;
  token: string;
  /** Bound on one request, connect to last byte. */
  timeoutMs?: number;
  /** Concurrent streams on the one HTTP/2 connection. */
  maxConcurrentStreams?: number;
}

export interface CallResult<T = unknown> {
  result: T;
  payload: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A client for one peer over one HTTP/2 connection (cleartext h2c for now;
 * TLS arrives with transport security). Every call is bounded by timeoutMs and
 * every failure is a MirrorError naming the peer: an errno outcome from the
 * peer keeps its errno; transport failures are EIO with MFS_UNREACHABLE or
 * MFS_TIMEOUT.
 */
export class PeerClient {
  readonly name: string;
  private readonly client: H2CClient;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(readonly url: string, opts: PeerClientOptions) {
    this.name = opts.name ?? url;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const streams = opts.maxConcurrentStreams ?? 128;
    this.client = new H2CClient(url, {
      pipelining: streams,
      maxConcurrentStreams: streams,
      connectTimeout: this.timeoutMs,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    this.headers = { authorization: `Bearer ${opts.token}`, [PROTOCOL_HEADER]: String(PROTOCOL_VERSION) };
  }

  /** Send one operation; resolves with its result and payload, throws MirrorError on an error outcome. */
  async call<T = unknown>(req: RequestInput, payload?: Buffer): Promise<CallResult<T>> {
    const body = await this.send('POST', ROUTES.call, encodeFrame(req, payload), req.op);
    let frame;
    try {
      frame = decodeFrame(body);
    } catch (err) {
      throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${req.op} with an undecodable frame: ${(err as Error).message}`, { context: { peer: this.name, op: req.op } });
    }
    const header = frame.header as ResponseHeader;
    if (header.ok === true) return { result: header.result as T, payload: frame.payload };
    if (header.ok === false && header.error && typeof header.error.errno === 'string') {
      throw MirrorError.fromWire(header.error, { peer: this.name, op: req.op, path: pathOf(req) });
    }
    throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${req.op} without an outcome`, { context: { peer: this.name, op: req.op } });
  }

  handshake(mount: string, epoch: number): Promise<HandshakeResult> {
    return this.call<HandshakeResult>({ op: 'handshake', protocol: PROTOCOL_VERSION, mount, epoch }).then((r) => r.result);
  }

  progress(mount: string): Promise<ProgressResult> {
    return this.call<ProgressResult>({ op: 'progress', mount }).then((r) => r.result);
  }

  async status(): Promise<PeerStatus> {
    return JSON.parse((await this.send('GET', ROUTES.status, undefined, 'status')).toString('utf8')) as PeerStatus;
  }

  /** The peer's tree manifest, in path order. Bounded by timeoutMs per request as a whole. */
  async manifest(): Promise<ManifestEntry[]> {
    const text = (await this.send('GET', ROUTES.manifest, undefined, 'manifest', this.timeoutMs * 30)).toString('utf8');
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ManifestEntry);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }

  private async send(method: 'GET' | 'POST', path: string, body: Buffer | undefined, what: string, timeoutMs = this.timeoutMs): Promise<Buffer> {
    const context = { peer: this.name, op: what };
    let res;
    try {
      res = await this.client.request({ method, path, headers: this.headers, body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw transportError(err, this.name, what, timeoutMs);
    }
    let buf: Buffer;
    try {
      buf = Buffer.from(await res.body.arrayBuffer());
    } catch (err) {
      throw transportError(err, this.name, what, timeoutMs);
    }
    if (res.statusCode !== 200) {
      // Protocol-level refusals (auth, version, malformed) carry an error frame.
      let wire: WireError | undefined;
      try {
        wire = (decodeFrame(buf).header as { error?: WireError }).error;
      } catch {
        wire = undefined;
      }
      if (wire && typeof wire.errno === 'string') throw MirrorError.fromWire(wire, context);
      throw new MirrorError('MFS_BAD_RESPONSE', `peer ${this.name} answered ${what} with HTTP ${res.statusCode}`, { context });
    }
    return buf;
  }
}

function pathOf(req: RequestInput): string | undefined {
  return 'path' in req ? req.path : 'from' in req ? req.from : undefined;
}

function transportError(err: unknown, peer: string, what: string, timeoutMs: number): MirrorError {
  const e = err as Error & { code?: string };
  const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError' || e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError || e instanceof undiciErrors.ConnectTimeoutError;
  if (timedOut) return new MirrorError('MFS_TIMEOUT', `peer ${peer} did not answer ${what} within ${timeoutMs} ms`, { context: { peer, op: what }, cause: err });
  return new MirrorError('MFS_UNREACHABLE', `peer ${peer} unreachable for ${what}: ${e.code ?? ''} ${e.message}`.replace(/\s+/g, ' '), { context: { peer, op: what }, cause: err });
}
