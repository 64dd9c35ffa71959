import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureIdentity, loadIdentity, type Identity } from '../../src/security/identity.js';
import type { Transport } from '../../src/security/transport.js';
import { Trust } from '../../src/security/trust.js';
import { tmpDir } from './tmp.js';

/** Where global-tls.ts put the shared test identities. */
export function testTlsDir(): string {
  const dir = process.env.MIRRORFS_TEST_TLS_DIR;
  if (!dir) throw new Error('MIRRORFS_TEST_TLS_DIR is not set: run the tests through vitest (globalSetup test/helpers/global-tls.ts)');
  return dir;
}

/** Flags that give a peer or relay the shared test identity and trust. */
export function peerTlsArgs(): string[] {
  return ['--tls-identity', join(testTlsDir(), 'peer'), '--trust', join(testTlsDir(), 'trust')];
}

/** Flags that give a mount or standby the shared test identity and trust. */
export function mountTlsArgs(): string[] {
  return ['--tls-identity', join(testTlsDir(), 'mount'), '--trust', join(testTlsDir(), 'trust')];
}

let cached: Transport | undefined;

/** The transport an in-test client uses: the mount's identity, the shared trust. */
export function testTransport(): Transport {
  cached ??= { kind: 'tls', identity: loadIdentity(join(testTlsDir(), 'mount'), 'globalSetup'), trust: new Trust(join(testTlsDir(), 'trust')) };
  return cached;
}

/** The shared test peer's key and certificate, for a stand-in server the mount must trust. */
export function testPeerKeyPair(): { key: string; cert: string } {
  const { key, cert } = loadIdentity(join(testTlsDir(), 'peer'), 'globalSetup');
  return { key, cert };
}

/** The shared test mount's key and certificate, for raw clients the peers must let in. */
export function testMountKeyPair(): { key: string; cert: string } {
  const { key, cert } = loadIdentity(join(testTlsDir(), 'mount'), 'globalSetup');
  return { key, cert };
}

/** A new TLS identity of a test's own, made by the product's init code (security tests). */
export async function newIdentity(name: string): Promise<Identity> {
  return (await ensureIdentity(join(tmpDir(`mirrorfs-id-${name}-`), 'tls'), name)).identity;
}

/** A trust file: each identity with its roles (null: a line without roles, the format before roles). */
export function writeTrustFile(entries: Array<[Identity, string | null]>): string {
  const file = join(tmpDir('mirrorfs-trust-'), 'trust');
  writeFileSync(file, entries.map(([id, roles]) => `${id.fingerprint} ${id.dir}${roles === null ? '' : ` roles=${roles}`}`).join('\n') + '\n', { mode: 0o600 });
  return file;
}

/** A transport presenting `identity` and trusting what `trustFile` lists. */
export function tlsTransport(identity: Identity, trustFile: string): Transport {
  return { kind: 'tls', identity, trust: new Trust(trustFile) };
}
