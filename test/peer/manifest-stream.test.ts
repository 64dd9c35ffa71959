import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerClient } from '../../src/client/peer-client.js';
import type { ManifestEntry } from '../../src/protocol/ops.js';
import { loadIdentity } from '../../src/security/identity.js';
import { Trust } from '../../src/security/trust.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { testTlsDir } from '../helpers/tls.js';
import { cleanupTmp } from '../helpers/tmp.js';

/**
 * Issue 23: a manifest is read as it comes, one entry at a time, so that
 * comparing trees of a million entries holds none of them whole. What the
 * stream yields must be exactly the manifest, a stream stopped early must
 * leave the connection usable, and a refusal must come out as the refusal.
 */

let peer: PeerProcess;
let client: PeerClient;

beforeAll(async () => {
  peer = await spawnPeer({ name: 'east' });
  client = peer.client();
  // More entries than one answer piece, in several directories, with names outside ASCII.
  for (let d = 0; d < 4; d++) {
    const dir = join(peer.dataDir, `dir-${d}`, 'ü');
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 300; f++) writeFileSync(join(dir, `file-${f}-ñ`), `content ${d} ${f}`);
  }
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

async function collect(stream: AsyncIterable<ManifestEntry>): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

describe('a manifest read as a stream', () => {
  it('yields exactly the entries of the whole answer, with and without content hashes, for the tree or a subtree', async () => {
    const whole = await client.manifest();
    expect(whole.length).toBe(4 * 302);
    expect(await collect(client.manifestStream())).toEqual(whole);
    expect(await collect(client.manifestStream({ content: false }))).toEqual(await client.manifest({ content: false }));
    const sub = await collect(client.manifestStream({ path: 'dir-2/ü' }));
    expect(sub.length).toBe(301);
    expect(sub).toEqual(await client.manifest({ path: 'dir-2/ü' }));
    expect(await collect(client.manifestStream({ path: 'absent/name' }))).toEqual([]);
  });

  it('stopped early, ends its stream and leaves the connection usable', async () => {
    let seen = 0;
    for await (const _ of client.manifestStream()) if (++seen === 3) break;
    expect(seen).toBe(3);
    // The same session serves the next calls, streamed or not.
    expect((await client.status()).id).toBeTruthy();
    expect((await collect(client.manifestStream({ content: false }))).length).toBe(4 * 302);
  });

  it('comes out as the peer\'s refusal when the reader may not read', async () => {
    // The shared peer identity has the roles peer and relay: not a reader.
    const asPeer = peer.client({ transport: { kind: 'tls', identity: loadIdentity(join(testTlsDir(), 'peer'), 'test'), trust: new Trust(join(testTlsDir(), 'trust')) } });
    await expect(collect(asPeer.manifestStream())).rejects.toMatchObject({ code: 'MFS_ROLE', errno: 'EACCES' });
  });
});
