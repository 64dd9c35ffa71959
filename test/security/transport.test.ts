import { execFileSync } from 'node:child_process';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { fingerprintOf, normalizeFingerprint, type Identity } from '../../src/security/identity.js';
import type { Transport } from '../../src/security/transport.js';
import { Trust, parseTrustFile } from '../../src/security/trust.js';
import { runCollect } from '../helpers/child.js';
import { MIRRORFS_BIN, cleanupMounts, startMount } from '../helpers/mount.js';
import { PEER_BIN, TEST_TOKEN, cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { PeerClient } from '../../src/client/peer-client.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { newIdentity, testTransport, tlsTransport, writeTrustFile } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Transport security through real processes: peers and relays let in only
 * clients whose certificate they trust, and a mount talks only to peers whose
 * certificate it trusts, before sending anything (not even its token).
 */

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});

/** A trust file listing these identities, with no roles (every role: what these tests are about is trust itself). */
function trustFileOf(...identities: Identity[]): string {
  return writeTrustFile(identities.map((i) => [i, null]));
}

/** A peer (or relay) that trusts exactly these client identities. */
async function peerTrusting(name: string, trusted: Identity[], extraArgs: string[] = [], pure = false): Promise<{ peer: PeerProcess; identity: Identity }> {
  const identity = await newIdentity(name);
  const peer = await spawnPeer({ name, pure, extraArgs: ['--tls-identity', identity.dir, '--trust', trustFileOf(identity, ...trusted), ...extraArgs] });
  return { peer, identity };
}

const stamp = new Stamper('security-test');

describe('peers and relays let in only trusted certificates', () => {
  it('a client whose certificate is not trusted is refused before its token is looked at, and changes nothing', async () => {
    const mount = await newIdentity('mount');
    const stranger = await newIdentity('stranger');
    const { peer, identity: peerId } = await peerTrusting('east', [mount]);
    const trustsPeer = trustFileOf(peerId);
    const good = peer.client({ transport: tlsTransport(mount, trustsPeer) });
    expect((await good.status()).name).toBe('east');
    // The right token does not help a certificate the peer does not trust.
    const intruder = peer.client({ transport: tlsTransport(stranger, trustsPeer) });
    const refusal = intruder.call(stamp.next({ op: 'mkdir', path: 'intruded', mode: 0o755 }));
    await expect(refusal).rejects.toMatchObject({ code: 'MFS_AUTH_CERT', errno: 'EACCES' });
    await expect(refusal).rejects.toThrow(new RegExp(`does not trust the client certificate ${stranger.fingerprint}`));
    await expect(intruder.status()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    await expect(intruder.manifest()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    expect(existsSync(join(peer.dataDir, 'intruded'))).toBe(false);
    // The refusal's log line travels through a pipe: it may come after the client's error.
    await waitFor(() => peer.stderr().includes(stranger.fingerprint), 'the peer logging the refused fingerprint');
    expect(peer.stderr()).toContain('refusing a client whose certificate is not trusted');
  });

  it('a client that presents no certificate at all is refused', async () => {
    const mount = await newIdentity('mount');
    const { peer } = await peerTrusting('east', [mount]);
    const { rawRequest } = await import('../helpers/raw.js');
    const res = await rawRequest(peer.url, { method: 'GET', path: '/v1/status', headers: { 'mirrorfs-protocol': String(PROTOCOL_VERSION), authorization: 'Bearer test-token-0123456789abcdef' }, clientCert: null });
    expect(res.status).toBe(401);
    expect(res.body.toString()).toMatch(/does not trust the client certificate \(none\)/);
  });

  it('a relay refuses an untrusted client too; a trusted one reaches the far mirror through it', async () => {
    const mount = await newIdentity('mount');
    const stranger = await newIdentity('stranger');
    const relayIdentity = await newIdentity('relay');
    // The far mirror trusts the mount too: a relay carries nothing the far end would not let in itself (roles.test.ts).
    const { peer: far, identity: farIdentity } = await peerTrusting('far', [relayIdentity, mount]);
    const relay = await spawnPeer({ name: 'relay', pure: true, extraArgs: ['--tls-identity', relayIdentity.dir, '--trust', trustFileOf(relayIdentity, mount, farIdentity), '--forward-to', far.url] });
    const trustsRelay = trustFileOf(relayIdentity);
    const owner = relay.client({ transport: tlsTransport(mount, trustsRelay) });
    const mountStamp = new Stamper('relay-owner');
    await owner.handshake(mountStamp.mount, mountStamp.epoch);
    await owner.call(mountStamp.next({ op: 'mkdir', path: 'from-owner', mode: 0o755 }));
    await waitFor(() => existsSync(join(far.dataDir, 'from-owner')), 'the trusted change at the far mirror');
    const refused = relay.client({ transport: tlsTransport(stranger, trustsRelay) }).call(mountStamp.next({ op: 'mkdir', path: 'from-stranger', mode: 0o755 }));
    await expect(refused).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    await waitFor(() => relay.stderr().includes(stranger.fingerprint), 'the relay logging the refused fingerprint');
    // What the relay queued has all arrived (status is answered through the relay from the far end): the stranger's change is not there.
    await waitFor(async () => (await owner.status()).relay?.queue.depth === 0, 'the relay queue drained');
    expect(existsSync(join(far.dataDir, 'from-stranger'))).toBe(false);
  });

  it('trust follows the file: a fingerprint added lets a new key in, one removed cuts the old key off, even on a connection already open (rotation)', async () => {
    const oldKey = await newIdentity('mount-old');
    const newKey = await newIdentity('mount-new');
    const { peer, identity: peerId } = await peerTrusting('east', [oldKey]);
    const trustFile = readTrustPath(peer);
    const trustsPeer = trustFileOf(peerId);
    // One client each, kept for the whole test, as a mount keeps its connection.
    const newClient = peer.client({ transport: tlsTransport(newKey, trustsPeer) });
    const oldClient = peer.client({ transport: tlsTransport(oldKey, trustsPeer) });
    await expect(newClient.status()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    expect((await oldClient.status()).name).toBe('east');
    writeFileSync(trustFile, `${readFileSync(trustFile, 'utf8')}${newKey.fingerprint} mount-new\n`);
    // The refused client reconnects on its next call and is judged against the new file.
    expect((await newClient.status()).name).toBe('east');
    // The old key owns the peer and has its call channel open (changes travel on it).
    const stamp = new Stamper();
    await oldClient.handshake(stamp.mount, stamp.epoch);
    await oldClient.call(stamp.next({ op: 'mkdir', path: 'before-revoke', mode: 0o755 }));
    writeFileSync(trustFile, readFileSync(trustFile, 'utf8').split('\n').filter((l) => !l.startsWith(oldKey.fingerprint)).join('\n'));
    // The old key's open connection, and the channel on it, is judged again once the peer sees the file changed (within a second).
    let probe = 0;
    await waitFor(async () => oldClient.call(stamp.next({ op: 'mkdir', path: `probe${++probe}`, mode: 0o755 })).then(() => false, (err: { code?: string }) => err.code === 'MFS_AUTH_CERT'), 'the old key refused on its open channel', 5000);
    expect(existsSync(join(peer.dataDir, `probe${probe}`))).toBe(false); // the refused change was not applied
    // Its connection is closed after the refusal; on a new one it is refused as well.
    await waitFor(async () => oldClient.status().then(() => false, (err: { code?: string }) => err.code === 'MFS_AUTH_CERT'), 'the old key refused on a new connection', 5000);
    expect((await newClient.status()).name).toBe('east');
  });

  it('peers are reachable over IPv6 with TLS', async () => {
    const peer = await spawnPeer({ name: 'v6', extraArgs: ['--listen', '[::1]:0'] });
    const client = new PeerClient(`https://[::1]:${peer.port}`, { name: 'v6', token: TEST_TOKEN, transport: testTransport(), timeoutMs: 5000 });
    try {
      expect((await client.status()).name).toBe('v6');
    } finally {
      await client.close();
    }
  });
});

/** The --trust argument a peer was started with. */
function readTrustPath(peer: PeerProcess): string {
  const args = peer.proc.spawnargs;
  return args[args.lastIndexOf('--trust') + 1]!;
}

describe('the mount talks only to peers it trusts', () => {
  it('a man in the middle with its own certificate is refused, and receives not one byte of HTTP/2 (no token)', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    // The proxy terminates TLS with its own certificate, forwards to west, and records what the mount sends it.
    const evil = await generate([{ name: 'commonName', value: 'west' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    let received = 0;
    let connections = 0;
    const proxy = tls.createServer({ key: evil.private, cert: evil.cert, ALPNProtocols: ['h2'] }, (client) => {
      const upstream = tls.connect({ host: '127.0.0.1', port: west.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
      client.on('data', (d: Buffer) => {
        received += d.length;
        upstream.write(d);
      });
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
    });
    proxy.on('connection', () => connections++);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const mitm = { ...west, url: `https://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
      const refused = startMount({ peers: [east, mitm], extraArgs: ['--peer-timeout', '2000'] });
      await expect(refused).rejects.toThrow(new RegExp(`peer west .*presented certificate ${fingerprintOf(evil.cert)}.*not in .*impersonating`, 's'));
      expect(connections).toBeGreaterThan(0);
      expect(received).toBe(0);
      // The client itself: MFS_UNTRUSTED, never retried as a transport failure.
      const client = new PeerClient(mitm.url, { name: 'west', token: TEST_TOKEN, transport: testTransport(), timeoutMs: 2000 });
      await expect(client.status()).rejects.toThrow(/impersonating/);
      await expect(client.status()).rejects.toMatchObject({ code: 'MFS_UNTRUSTED', errno: 'EACCES' });
      expect(received).toBe(0);
      await client.close();
    } finally {
      proxy.close();
    }
  });
});

describe('setting up: init, cleartext only when asked for', () => {
  it('init makes identities whose fingerprints openssl agrees with; peers and a mount set up from its output mirror over TLS', async () => {
    const base = tmpDir('mirrorfs-init-');
    const eastData = join(base, 'east');
    const westData = join(base, 'west');
    execFileSync('mkdir', ['-p', eastData, westData, join(base, 'etc')]);
    const initPeer = async (data: string, name: string) => {
      const r = await runCollect(process.execPath, [PEER_BIN, 'init', '--data', data, '--name', name]);
      expect(r.code, r.stderr).toBe(0);
      return /fingerprint: (\S+)/.exec(r.stdout)![1]!;
    };
    const eastFp = await initPeer(eastData, 'east');
    const westFp = await initPeer(westData, 'west');
    // Idempotent: a second init keeps the key that others may already trust.
    expect(await initPeer(eastData, 'east')).toBe(eastFp);
    const openssl = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(`${eastData}.state`, 'tls', 'cert.pem')]).toString();
    expect(normalizeFingerprint(openssl.split('=')[1]!)).toBe(eastFp);
    const mountInit = await runCollect(process.execPath, [MIRRORFS_BIN, 'init', '--tls-identity', join(base, 'etc', 'tls'), '--trust', join(base, 'etc', 'trust'), '--name', 'primary']);
    expect(mountInit.code, mountInit.stderr).toBe(0);
    const mountFp = /fingerprint: (\S+)/.exec(mountInit.stdout)![1]!;
    expect(mountInit.stdout).toContain(`${mountFp} primary`);
    // A peer whose trust file lists nobody refuses to start, saying what to add.
    const empty = await runCollect(process.execPath, [PEER_BIN, '--data', eastData, '--listen', '127.0.0.1:0']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/lists no fingerprint, so no other node could connect/);
    // Exchange fingerprints as the docs say: every node's trust file lists the others.
    const all = `${eastFp} east\n${westFp} west\n${mountFp} primary\n`;
    // The peers' state is beside their data (out of the tree a mount controls): init put it there.
    for (const f of [join(`${eastData}.state`, 'trust'), join(`${westData}.state`, 'trust'), join(base, 'etc', 'trust')]) writeFileSync(f, all, { flag: 'a' });
    expect(existsSync(join(eastData, '.mirrorfs'))).toBe(false); // not even the tree's mark yet: init makes no peer state
    const east = await spawnPeer({ name: 'east', dataDir: eastData, extraArgs: ['--tls-identity', join(`${eastData}.state`, 'tls'), '--trust', join(`${eastData}.state`, 'trust')] });
    const west = await spawnPeer({ name: 'west', dataDir: westData, extraArgs: ['--tls-identity', join(`${westData}.state`, 'tls'), '--trust', join(`${westData}.state`, 'trust')] });
    const mount = await startMount({ peers: [east, west], extraArgs: ['--tls-identity', join(base, 'etc', 'tls'), '--trust', join(base, 'etc', 'trust')] });
    execFileSync('sh', ['-c', `echo secure > ${join(mount.mountpoint, 'file')}`]);
    expect(readFileSync(join(eastData, 'file'), 'utf8')).toBe('secure\n');
    expect(readFileSync(join(westData, 'file'), 'utf8')).toBe('secure\n');
  });

  it('cleartext is refused unless --insecure-cleartext is given on both sides, and then works', async () => {
    const noIdentity = await runCollect(process.execPath, [PEER_BIN, '--data', tmpDir('mirrorfs-noid-'), '--listen', '127.0.0.1:0']);
    expect(noIdentity.code).toBe(1);
    expect(noIdentity.stderr).toMatch(/no TLS identity in .*create one with `mirrorfs-peer init --data/);
    const east = await spawnPeer({ name: 'east', extraArgs: ['--insecure-cleartext'] });
    const west = await spawnPeer({ name: 'west', extraArgs: ['--insecure-cleartext'] });
    expect(east.stderr()).toContain('--insecure-cleartext');
    const plain = [east, west].map((p) => ({ ...p, url: p.url.replace('https:', 'http:') }));
    await expect(startMount({ peers: plain })).rejects.toThrow(/http:\/\/127\.0\.0\.1:\d+ is cleartext HTTP\/2; use https:\/\/, or pass --insecure-cleartext/);
    const mount = await startMount({ peers: plain, extraArgs: ['--insecure-cleartext'] });
    execFileSync('sh', ['-c', `echo plain > ${join(mount.mountpoint, 'file')}`]);
    expect(readFileSync(join(west.dataDir, 'file'), 'utf8')).toBe('plain\n');
    // And a TLS client cannot talk to a cleartext peer by mistake.
    await expect(east.client({ transport: testTransport() }).status()).rejects.toMatchObject({ code: 'MFS_UNREACHABLE' });
  });
});

describe('trust by CA', () => {
  it('certificates issued by the trusted CA are let in without pins; others are not; a server certificate must name its host', async () => {
    const ca = await generate([{ name: 'commonName', value: 'mirrorfs test CA' }], {
      keyType: 'ec', curve: 'P-256', algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }],
    });
    const dir = tmpDir('mirrorfs-ca-');
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    const issue = async (name: string, altNames: Array<{ type: 2 | 7; value?: string; ip?: string }>, ou: string[] = []) => {
      const pems = await generate([{ name: 'commonName', value: name }, ...ou.map((value) => ({ name: 'OU', value }))], {
        keyType: 'ec', curve: 'P-256', algorithm: 'sha256', ca: { key: ca.private, cert: ca.cert },
        extensions: [{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true }, { name: 'extKeyUsage', serverAuth: true, clientAuth: true }, { name: 'subjectAltName', altNames }],
      });
      const idDir = join(dir, name);
      execFileSync('mkdir', ['-p', idDir]);
      writeFileSync(join(idDir, 'key.pem'), pems.private);
      writeFileSync(join(idDir, 'cert.pem'), pems.cert);
      return { dir: idDir, key: pems.private, cert: pems.cert, fingerprint: fingerprintOf(pems.cert) } satisfies Identity;
    };
    writeFileSync(join(dir, 'no-pins'), '# trust by CA only\n');
    const peerId = await issue('east', [{ type: 7, ip: '127.0.0.1' }]);
    const mountId = await issue('mount', [{ type: 2, value: 'mount.example' }]);
    const wrongHost = await issue('elsewhere', [{ type: 2, value: 'elsewhere.example' }]);
    const peer = await spawnPeer({ name: 'east', extraArgs: ['--tls-identity', peerId.dir, '--trust', join(dir, 'no-pins'), '--trust-ca', caFile] });
    const viaCa: Transport = { kind: 'tls', identity: mountId, trust: new Trust(undefined, caFile) };
    expect((await peer.client({ transport: viaCa }).status()).name).toBe('east');
    // A self-signed client certificate, not issued by the CA: refused.
    const selfSigned = await newIdentity('stranger');
    await expect(peer.client({ transport: { kind: 'tls', identity: selfSigned, trust: new Trust(undefined, caFile) } }).status()).rejects.toMatchObject({ code: 'MFS_AUTH_CERT' });
    // A CA-issued server certificate for another host name is not accepted for 127.0.0.1.
    const impostor = await spawnPeer({ name: 'impostor', extraArgs: ['--tls-identity', wrongHost.dir, '--trust', join(dir, 'no-pins'), '--trust-ca', caFile] });
    await expect(impostor.client({ transport: viaCa }).status()).rejects.toMatchObject({ code: 'MFS_UNTRUSTED' });
    // A CA-issued certificate names its roles in its subject (OU=mirrorfs:<role>): this one only reads.
    const readerId = await issue('auditor', [{ type: 2, value: 'auditor.example' }], ['mirrorfs:reader']);
    const auditor = peer.client({ transport: { kind: 'tls', identity: readerId, trust: new Trust(undefined, caFile) } });
    expect((await auditor.call<{ names: string[] }>({ op: 'readdir', path: '' })).result.names).toEqual(expect.any(Array));
    await expect(auditor.handshake('auditor-mount', 99)).rejects.toMatchObject({ code: 'MFS_ROLE' });
  });
});

describe('trust files', () => {
  it('accept fingerprints as openssl and others print them, and refuse a bad line by number', () => {
    const fp = 'ab'.repeat(32);
    const pins = parseTrustFile(`# comment\n\nsha256:${fp} east site\nSHA256 Fingerprint=${'CD:'.repeat(31)}CD\n`, 'f');
    expect([...pins.keys()]).toEqual([`${'AB:'.repeat(31)}AB`, `${'CD:'.repeat(31)}CD`]);
    expect(pins.get(`${'AB:'.repeat(31)}AB`)).toMatchObject({ label: 'east site', rolesUnnamed: true });
    const withRoles = parseTrustFile(`${fp} east roles=peer,relay site\n`, 'f').get(`${'AB:'.repeat(31)}AB`)!;
    expect(withRoles.label).toBe('east site');
    expect([...withRoles.roles].sort()).toEqual(['peer', 'relay']);
    expect(() => parseTrustFile(`${fp} east roles=peer,owner\n`, 'f')).toThrow(/trust file f line 1: "owner" is not a role/);
    expect(() => parseTrustFile(`${fp}\nnot-a-fingerprint east\n`, 'f')).toThrow(/trust file f line 2: "not-a-fingerprint" is not a SHA-256 fingerprint/);
    expect(normalizeFingerprint('ab:cd')).toBeNull();
  });
});
