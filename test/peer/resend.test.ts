import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerClient } from '../../src/client/peer-client.js';
import type { MutationInput, ResendAnswer } from '../../src/protocol/ops.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';

/** `resend` (catch-up's many changes to a call) against a real peer over HTTP/2: order, exactly once, where it stops, and what it refuses. */

let peer: PeerProcess;
let client: PeerClient;
const stamp = new Stamper();
const at = (p: string) => join(peer.dataDir, p);

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  client = peer.client();
  await client.handshake(stamp.mount, stamp.epoch);
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

/** Send changes (each with its payload and expected outcome) in one resend call. */
async function resend(changes: Array<{ change: MutationInput; payload?: string; expect?: string | null }>): Promise<ResendAnswer> {
  const payloads = changes.map((c) => Buffer.from(c.payload ?? ''));
  const req = { op: 'resend' as const, mount: stamp.mount, epoch: stamp.epoch, changes: changes.map((c, i) => ({ change: c.change, bytes: payloads[i]!.length, expect: c.expect === undefined ? 'ok' : c.expect })) };
  return (await client.call<ResendAnswer>(req, Buffer.concat(payloads))).result;
}

describe('resend', () => {
  it('applies the changes in order, each with its own payload, and answers a second send of them from their records', async () => {
    const changes = [
      { change: stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 }) },
      { change: stamp.next({ op: 'create', path: 'd/f', mode: 0o600 }) },
      { change: stamp.next({ op: 'write', path: 'd/f', offset: 0 }), payload: 'hello' },
      { change: stamp.next({ op: 'write', path: 'd/f', offset: 5 }), payload: ', world' },
      { change: stamp.next({ op: 'chmod', path: 'd/f', mode: 0o640 }) },
    ];
    expect((await resend(changes)).outcomes).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: true }, { ok: true }]);
    expect(readFileSync(at('d/f'), 'utf8')).toBe('hello, world');
    expect(statSync(at('d/f')).mode & 0o7777).toBe(0o640);
    // Exactly once: sent again (a catch-up cut short), the writes are not applied a second time
    // over a change made since, and the mkdir is not EEXIST: each answers from its record.
    await client.call(stamp.next({ op: 'write', path: 'd/f', offset: 0 }), Buffer.from('HELLO'));
    expect((await resend(changes)).outcomes).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: true }, { ok: true }]);
    expect(readFileSync(at('d/f'), 'utf8')).toBe('HELLO, world');
  });

  it('stops after the first outcome that differs from the one expected, leaving the rest unapplied; an expected errno goes on', async () => {
    await client.call(stamp.next({ op: 'mkdir', path: 'x', mode: 0o755 }));
    const differs = await resend([
      { change: stamp.next({ op: 'mkdir', path: 'x', mode: 0o755 }) }, // EEXIST here, ok on the copy that recorded it
      { change: stamp.next({ op: 'mkdir', path: 'x/after', mode: 0o755 }) },
    ]);
    expect(differs.outcomes).toEqual([{ ok: false, error: expect.objectContaining({ errno: 'EEXIST', code: 'MFS_ERRNO' }) }]);
    expect(differs.failure).toBeUndefined();
    expect(existsSync(at('x/after'))).toBe(false);
    const agrees = await resend([
      { change: stamp.next({ op: 'mkdir', path: 'x', mode: 0o755 }), expect: 'EEXIST' },
      { change: stamp.next({ op: 'mkdir', path: 'x/after', mode: 0o755 }) },
    ]);
    expect(agrees.outcomes.map((o) => o.ok)).toEqual([false, true]);
    expect(existsSync(at('x/after'))).toBe(true);
  });

  it('a refused change ends the call with the refusal as its failure; what came before it stays applied', async () => {
    const earlier = stamp.next({ op: 'mkdir', path: 'earlier', mode: 0o755 });
    await client.call(earlier);
    const answer = await resend([
      { change: stamp.next({ op: 'mkdir', path: 'before-refusal', mode: 0o755 }) },
      // The seq of an earlier change, for another change: refused (a bug in the sender).
      { change: { ...stamp.next({ op: 'mkdir', path: 'reuses-a-seq', mode: 0o755 }), seq: (earlier as { seq: number }).seq } },
      { change: stamp.next({ op: 'mkdir', path: 'never', mode: 0o755 }) },
    ]);
    expect(answer.outcomes).toEqual([{ ok: true }]);
    expect(answer.failure).toMatchObject({ code: 'MFS_SEQ_CONFLICT' });
    expect(existsSync(at('before-refusal'))).toBe(true);
    expect(existsSync(at('reuses-a-seq'))).toBe(false);
    expect(existsSync(at('never'))).toBe(false);
  });

  it('a malformed call changes nothing: payload sizes that do not add up, a change stamped for another mount or epoch', async () => {
    const one = stamp.next({ op: 'mkdir', path: 'not-made', mode: 0o755 });
    const req = (changes: unknown[]) => ({ op: 'resend' as const, mount: stamp.mount, epoch: stamp.epoch, changes }) as never;
    await expect(client.call(req([{ change: one, bytes: 3, expect: 'ok' }]), Buffer.from('ab'))).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    await expect(client.call(req([{ change: { ...one, epoch: stamp.epoch + 1 }, bytes: 0, expect: 'ok' }]))).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    await expect(client.call(req([{ change: { ...one, mount: 'another-mount' }, bytes: 0, expect: 'ok' }]))).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    await expect(client.call(req([]))).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    expect(existsSync(at('not-made'))).toBe(false);
  });
});
