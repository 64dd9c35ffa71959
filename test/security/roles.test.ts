import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerClient } from '../../src/client/peer-client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { MAX_FIRST_EPOCH } from '../../src/peer/ownership.js';
import { issuePullTicket } from '../../src/security/pull-ticket.js';
import { signHandshake } from '../../src/security/handshake-proof.js';
import { X509Certificate } from 'node:crypto';
import type { Identity } from '../../src/security/identity.js';
import { cleanupMounts, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp } from '../helpers/tmp.js';
import { newIdentity, tlsTransport, writeTrustFile } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 22, findings 1, 2 and 5, through real peer processes (and a real mount
 * for the first): what a trusted certificate may do is what its roles say, the
 * owner is bound to the certificate that took the epoch, epochs advance one at
 * a time, and nothing passes through a relay or a pull that the far end would
 * not let in itself.
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

function tlsArgs(identity: Identity, trust: string): string[] {
  return ['--tls-identity', identity.dir, '--trust', trust];
}

/** A raw handshake, as a hostile client would send it (PeerClient.handshake steps through epochs). */
function rawHandshake(c: PeerClient, mount: string, epoch: number): Promise<unknown> {
  return c.call({ op: 'handshake', protocol: PROTOCOL_VERSION, mount, epoch });
}

describe('roles bound to certificates', () => {
  it("a peer's or a relay's key cannot act as the mount, nor another mount's key as the owner; a reader reads and changes nothing; the primary goes on", async () => {
    const mountId = await newIdentity('mount');
    const peerId = await newIdentity('peer');
    const relayId = await newIdentity('relay');
    const otherMountId = await newIdentity('other-mount');
    const readerId = await newIdentity('reader');
    const trust = writeTrustFile([[peerId, 'peer'], [relayId, 'relay'], [mountId, 'mount,standby'], [otherMountId, 'mount'], [readerId, 'reader']]);
    const east = await spawnPeer({ name: 'east', extraArgs: tlsArgs(peerId, trust) });
    const west = await spawnPeer({ name: 'west', extraArgs: tlsArgs(peerId, trust) });
    const mount = await startMount({ peers: [east, west], extraArgs: tlsArgs(mountId, trust) });
    writeFileSync(join(mount.mountpoint, 'a'), 'one');

    // The peer's own key and the token (finding 1): the owner's stamp is public in the status, but it is not the owner's certificate.
    const impostor = east.client({ transport: tlsTransport(peerId, trust) });
    const st = await impostor.status();
    const asOwner = { op: 'mkdir' as const, path: 'planted', mode: 0o755, mount: st.owner!, epoch: st.epoch, seq: 900_000_001 };
    await expect(impostor.call(asOwner)).rejects.toMatchObject({ code: 'MFS_ROLE', errno: 'EACCES' });
    await expect(impostor.call(asOwner)).rejects.toThrow(/\(peer\) may not ask for mkdir/);
    // Nor as catch-up's many changes to a call.
    await expect(impostor.call({ op: 'resend', mount: st.owner!, epoch: st.epoch, changes: [{ change: asOwner, bytes: 0, expect: 'ok' }] })).rejects.toMatchObject({ code: 'MFS_ROLE', errno: 'EACCES' });
    // Nor may it fence the primary with the next epoch, or read the tree for itself.
    await expect(rawHandshake(impostor, st.owner!, st.epoch + 1)).rejects.toMatchObject({ code: 'MFS_ROLE', errno: 'EACCES' });
    await expect(impostor.call({ op: 'readdir', path: '' })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(impostor.manifest()).rejects.toMatchObject({ code: 'MFS_ROLE' });
    // Naming the mount's (public) certificate as its origin does not help a peer without its owner's pull ticket.
    const mountDer = new X509Certificate(mountId.cert).raw;
    await expect(impostor.call({ op: 'readdir', path: '' }, undefined, undefined, 0, { origin: mountDer })).rejects.toMatchObject({ code: 'MFS_ROLE' });

    // A relay's key: naming the mount as origin, it cannot take the peer without the mount's signature
    // on the handshake, nor pass on changes for an owner whose signed handshake it never carried here.
    const relay = east.client({ transport: tlsTransport(relayId, trust) });
    await expect(relay.handshake(st.owner!, st.epoch, undefined, { origin: mountDer, proof: null })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(relay.handshake(st.owner!, st.epoch + 1, undefined, { origin: mountDer, proof: signHandshake(st.owner!, st.epoch + 1, relayId.key) })).rejects.toThrow(/not signed by certificate/);
    await expect(relay.call({ ...asOwner, seq: 900_000_004 })).rejects.toMatchObject({ code: 'MFS_NO_HANDSHAKE' });
    await expect(relay.call({ op: 'repair', mount: st.owner!, epoch: st.epoch, action: { op: 'mkdir', path: 'planted', mode: 0o755 } }, undefined, undefined, 0, { origin: mountDer })).rejects.toMatchObject({ code: 'MFS_NO_HANDSHAKE' });

    // Another mount's key may take over at the next epoch (that is what the role is for), but not act as the owner at this one.
    const other = east.client({ transport: tlsTransport(otherMountId, trust) });
    await expect(other.call({ ...asOwner, seq: 900_000_002 })).rejects.toMatchObject({ code: 'MFS_NOT_OWNER' });
    await expect(rawHandshake(other, st.owner!, st.epoch)).rejects.toMatchObject({ code: 'MFS_NOT_OWNER' });

    // A reader reads and changes nothing.
    const reader = east.client({ transport: tlsTransport(readerId, trust) });
    const { payload } = await reader.call({ op: 'read', path: 'a', offset: 0, length: 100 });
    expect(payload.toString()).toBe('one');
    await expect(reader.call({ ...asOwner, seq: 900_000_003 })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(rawHandshake(reader, 'reader-mount', st.epoch + 1)).rejects.toMatchObject({ code: 'MFS_ROLE' });

    // The primary was neither fenced nor bypassed: its next write lands on both peers, and only its writes did.
    writeFileSync(join(mount.mountpoint, 'b'), 'two');
    expect((await impostor.status()).epoch).toBe(st.epoch);
    for (const p of [east, west]) {
      expect(readFileSync(join(p.dataDir, 'b'), 'utf8')).toBe('two');
      expect(existsSync(join(p.dataDir, 'planted'))).toBe(false);
    }
  });

  it('the owner whose trust line loses its mount role stops changing the peer once the file is read again, within its epoch', async () => {
    const mountId = await newIdentity('mount');
    const peerId = await newIdentity('peer');
    const trust = writeTrustFile([[peerId, 'peer'], [mountId, 'mount']]);
    const east = await spawnPeer({ name: 'east', extraArgs: tlsArgs(peerId, trust) });
    const c = east.client({ transport: tlsTransport(mountId, trust) });
    await c.handshake('demoted', 1);
    await c.call({ op: 'mkdir', path: 'before', mode: 0o755, mount: 'demoted', epoch: 1, seq: 1 });
    writeFileSync(trust, `${peerId.fingerprint} peer roles=peer\n${mountId.fingerprint} demoted roles=reader\n`);
    // The peer reads its trust file again within half a second; a barrier (which a reader may not ask for) shows when.
    await waitFor(() => c.call({ op: 'fsync', mount: 'demoted' }).then(() => false, (err: { code?: string }) => err.code === 'MFS_ROLE'), 'the trust file read again');
    await expect(c.call({ op: 'mkdir', path: 'after', mode: 0o755, mount: 'demoted', epoch: 1, seq: 2 })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(c.call({ op: 'mkdir', path: 'after', mode: 0o755, mount: 'demoted', epoch: 1, seq: 2 })).rejects.toThrow(/no longer a mount or standby here/);
    expect(existsSync(join(east.dataDir, 'after'))).toBe(false);
    // It still reads: a reader now.
    expect((await c.call<{ names: string[] }>({ op: 'readdir', path: '' })).result.names).toContain('before');
  });

  it('a trust line without roles still allows every role, and the peer says so in its log', async () => {
    const mountId = await newIdentity('mount');
    const peerId = await newIdentity('peer');
    const trust = writeTrustFile([[peerId, 'peer'], [mountId, null]]);
    const east = await spawnPeer({ name: 'east', extraArgs: tlsArgs(peerId, trust) });
    const c = east.client({ transport: tlsTransport(mountId, trust) });
    await c.handshake('legacy-mount', 1);
    await c.call({ op: 'mkdir', path: 'd', mode: 0o755, mount: 'legacy-mount', epoch: 1, seq: 1 });
    expect(existsSync(join(east.dataDir, 'd'))).toBe(true);
    await waitFor(() => east.stderr().includes('names no roles, so it may act in every role'), 'the warning about a trust line without roles');
  });
});

describe('epochs', () => {
  it('advance one at a time: an absurd epoch is refused and changes nothing; a peer behind is stepped through; a takeover still works', async () => {
    const south = await spawnPeer({ name: 'south' });
    const c = south.client();
    // A peer that never had an owner joins a set at the set's epoch, but not at an absurd one (finding 2).
    await expect(rawHandshake(c, 'm1', MAX_FIRST_EPOCH + 1)).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    await c.handshake('m1', 5);
    expect((await c.status()).epoch).toBe(5);
    // Once owned, only the next epoch is taken: the schema's maximum is refused, and nothing is stored.
    await expect(rawHandshake(c, 'm1', Number.MAX_SAFE_INTEGER)).rejects.toMatchObject({ code: 'MFS_EPOCH_SKIP' });
    await expect(c.handshake('m1', Number.MAX_SAFE_INTEGER)).rejects.toThrow(/more than 10000 steps/);
    await expect(rawHandshake(c, 'm1', 9)).rejects.toMatchObject({ code: 'MFS_EPOCH_SKIP' });
    expect((await c.status()).epoch).toBe(5);
    // A client steps a peer that was away through the epochs between, each taken in turn.
    await c.handshake('m1', 9);
    expect((await c.status()).epoch).toBe(9);
    for (const e of [6, 7, 8, 9]) expect(south.stderr()).toMatch(new RegExp(`"epoch":${e},"owner":"m1".*ownership established`));
    // And a takeover by another mount takes the next epoch as before.
    await rawHandshake(c, 'm2', 10);
    expect(await c.status()).toMatchObject({ epoch: 10, owner: 'm2' });
  });
});

describe('no trust through a relay or a pull', () => {
  it('a key only the relay trusts can neither own, change nor list the far mirror through it; the mount the far end trusts can', async () => {
    const mountId = await newIdentity('mount');
    const relayId = await newIdentity('relay');
    const farId = await newIdentity('far');
    const stranger = await newIdentity('relay-only');
    const far = await spawnPeer({ name: 'far', extraArgs: tlsArgs(farId, writeTrustFile([[farId, 'peer'], [relayId, 'relay'], [mountId, 'mount']])) });
    const relayTrust = writeTrustFile([[farId, 'peer'], [mountId, 'mount'], [stranger, 'mount']]);
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: [...tlsArgs(relayId, relayTrust), '--forward-to', far.url] });
    const trustsRelay = writeTrustFile([[relayId, 'relay']]);

    // Finding 5: the relay trusts the stranger, the far mirror does not; its handshake is refused there, so here.
    const s = relay.client({ transport: tlsTransport(stranger, trustsRelay) });
    await expect(s.handshake('stranger-mount', 1)).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(s.handshake('stranger-mount', 1)).rejects.toThrow(/which this peer does not trust/);
    await expect(s.call({ op: 'mkdir', path: 'from-stranger', mode: 0o755, mount: 'stranger-mount', epoch: 1, seq: 1 })).rejects.toMatchObject({ code: 'MFS_NO_HANDSHAKE' });
    // Reads through a pure relay name the reader: the far mirror judges it.
    await expect(s.call({ op: 'readdir', path: '' })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(s.manifest()).rejects.toMatchObject({ code: 'MFS_ROLE' });

    // The mount the far end trusts goes through, and its epoch is bound to its own certificate at both hops.
    const m = relay.client({ transport: tlsTransport(mountId, trustsRelay) });
    await m.handshake('real-mount', 1);
    await m.call({ op: 'mkdir', path: 'from-mount', mode: 0o755, mount: 'real-mount', epoch: 1, seq: 1 });
    await waitFor(() => existsSync(join(far.dataDir, 'from-mount')), 'the mount\'s change at the far mirror');
    const listed = await m.call<{ names: string[] }>({ op: 'readdir', path: '' });
    expect(listed.result.names).toContain('from-mount');
    // The stranger quoting the mount's stamp at the relay is not the owner there either.
    await expect(s.call({ op: 'mkdir', path: 'from-stranger', mode: 0o755, mount: 'real-mount', epoch: 1, seq: 2 })).rejects.toMatchObject({ code: 'MFS_NOT_OWNER' });
    await waitFor(async () => (await m.status()).relay?.queue.depth === 0, 'the relay queue drained');
    expect(existsSync(join(far.dataDir, 'from-stranger'))).toBe(false);
  });

  it('a pull reads with the owner\'s ticket, never the source\'s token; a mount the source does not trust cannot read it through another peer', async () => {
    const mountId = await newIdentity('mount');
    const eastId = await newIdentity('east');
    const northId = await newIdentity('north');
    const stranger = await newIdentity('stranger-mount');
    // east lets the stranger own it; the source (north) does not trust the stranger at all.
    const east = await spawnPeer({ name: 'east', extraArgs: tlsArgs(eastId, writeTrustFile([[eastId, 'peer'], [northId, 'peer'], [mountId, 'mount'], [stranger, 'mount']])) });
    const north = await spawnPeer({ name: 'north', extraArgs: tlsArgs(northId, writeTrustFile([[eastId, 'peer'], [northId, 'peer'], [mountId, 'mount']])) });
    const trustsPeers = writeTrustFile([[eastId, 'peer'], [northId, 'peer']]);
    const owner = north.client({ transport: tlsTransport(mountId, trustsPeers) });
    await owner.handshake('real-mount', 1);
    await owner.repair('real-mount', 1, { op: 'put-file', path: 'secret', mode: 0o600, uid: 0, gid: 0, mtimeMs: 1_000_000 }, Buffer.from('north only'));

    const s = east.client({ transport: tlsTransport(stranger, trustsPeers) });
    await s.handshake('stranger-mount', 1);
    // The source's token is not accepted for a pull over TLS: east would have to hold it.
    const token = readFileSync(north.tokenFile, 'utf8').trim();
    await expect(s.pull('stranger-mount', 1, { url: north.url, token }, 10_000)).rejects.toMatchObject({ code: 'MFS_MALFORMED' });
    // A ticket the stranger signs itself is refused by the source: it is not north's owner, and north does not trust it.
    const northPeerId = (await owner.status()).id;
    const eastCert = (await s.status()).certificate!;
    expect(eastCert).toBe(eastId.fingerprint);
    const forged = issuePullTicket({ source: northPeerId, mount: 'real-mount', epoch: 1, target: eastCert }, stranger.key);
    await expect(s.pull('stranger-mount', 1, { url: north.url, ticket: forged }, 10_000)).rejects.toThrow(/MFS_AUTH|MFS_ROLE/);
    expect(existsSync(join(east.dataDir, 'secret'))).toBe(false);
    await waitFor(() => north.stderr().includes('refused a pull ticket'), 'the source logging the refused ticket');

    // The owner of both, with its own ticket, pulls.
    const o = east.client({ transport: tlsTransport(mountId, trustsPeers) });
    await o.handshake('real-mount', 2);
    await owner.handshake('real-mount', 2);
    const ticket = issuePullTicket({ source: northPeerId, mount: 'real-mount', epoch: 2, target: eastCert }, mountId.key);
    await o.pull('real-mount', 2, { url: north.url, ticket }, 10_000);
    expect(readFileSync(join(east.dataDir, 'secret'), 'utf8')).toBe('north only');
    // The ticket opens reads for east's certificate only, and nothing but reads.
    const ticketed = (identity: Identity) => new PeerClient(north.url, { name: 'north', ticket, origin: new X509Certificate(mountId.cert).raw, transport: tlsTransport(identity, trustsPeers) });
    const asEast = ticketed(eastId);
    expect((await asEast.call<{ names: string[] }>({ op: 'readdir', path: '' })).result.names).toContain('secret');
    await expect(asEast.call({ op: 'settle', mount: 'real-mount', epoch: 2, seq: 9 })).rejects.toMatchObject({ code: 'MFS_ROLE' });
    await expect(ticketed(northId).call({ op: 'readdir', path: '' })).rejects.toMatchObject({ code: 'MFS_AUTH' });
    await asEast.close();
    // A ticket of an older epoch opens nothing any more.
    await o.handshake('real-mount', 3);
    await owner.handshake('real-mount', 3);
    await expect(o.pull('real-mount', 3, { url: north.url, ticket }, 10_000)).rejects.toThrow(/MFS_AUTH/);
  });
});
