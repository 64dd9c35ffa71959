import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDelay } from '../../src/link/emulator.js';
import { cleanupLinks, spawnLink } from '../helpers/link.js';
import { waitFor } from '../helpers/wait.js';

/** The link emulator (`mirrorfs-link run`) as a real process between a client and an echo server. */

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await cleanupLinks();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function echoServer(): Promise<number> {
  const server = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    let closed = false;
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks), closed: () => closed }));
    socket.once('error', reject);
  });
}

describe('mirrorfs-link', () => {
  it('carries bytes both ways unchanged, each way after the delay', async () => {
    const link = await spawnLink(await echoServer(), '25ms');
    const c = await connect(link.port);
    const message = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    const sent = process.hrtime.bigint();
    c.socket.write(message);
    await waitFor(() => c.received().length >= message.length, 'the echo through the link');
    const roundTripMs = Number(process.hrtime.bigint() - sent) / 1e6;
    expect(c.received().equals(message)).toBe(true);
    // Two crossings of a 25 ms link: not before 50 ms (a lower bound only; accuracy is scripts/bench-link.mjs).
    expect(roundTripMs).toBeGreaterThanOrEqual(50);
    expect((await link.status()).bytesForwarded).toBe(2 * message.length);
  });

  it('cut resets the connections and refuses new ones; up lets them through again', async () => {
    const link = await spawnLink(await echoServer());
    const c = await connect(link.port);
    c.socket.write('before');
    await waitFor(() => c.received().toString() === 'before', 'the echo before the cut');
    expect((await link.setMode('cut')).mode).toBe('cut');
    await waitFor(() => c.closed(), 'the connection to be reset');
    const refused = await new Promise<string>((r) => {
      const s = net.connect({ port: link.port, host: '127.0.0.1' });
      sockets.push(s);
      s.on('connect', () => s.write('during the cut'));
      s.on('data', () => r('answered'));
      s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      s.on('close', () => r('closed'));
    });
    expect(refused).toMatch(/ECONNRESET|closed/);
    await link.setMode('up');
    const again = await connect(link.port);
    again.socket.write('after');
    await waitFor(() => again.received().toString() === 'after', 'the echo after the link is back');
  });

  it('drop keeps the connection open and lets nothing through; up resets it', async () => {
    const link = await spawnLink(await echoServer());
    const c = await connect(link.port);
    await link.setMode('drop');
    c.socket.write('into the void');
    await waitFor(async () => (await link.status()).bytesDropped >= 'into the void'.length, 'the bytes to be dropped');
    expect(c.received().length).toBe(0);
    expect(c.closed()).toBe(false);
    await link.setMode('up');
    await waitFor(() => c.closed(), 'the dropping connection to be reset when the link returns');
  });

  it('parses delays in time units and in miles', () => {
    expect(parseDelay('250us')).toBe(250);
    expect(parseDelay('1.5ms')).toBe(1500);
    expect(parseDelay('2')).toBe(2000);
    expect(parseDelay('120mi')).toBe(600);
    expect(parseDelay('30 miles', 10)).toBe(1500);
    expect(() => parseDelay('fast')).toThrow(/expected a number/);
  });
});
