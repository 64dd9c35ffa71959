import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureIdentity } from '../../src/security/identity.js';

/**
 * vitest globalSetup: the TLS identities every test node uses by default (one
 * for peers and relays, one for mounts and standbys), made once per run by the
 * product's own init code, and a trust file listing both with their roles. Tests of the
 * transport itself make their own identities (test/security).
 */
export default async function setup(): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'mirrorfs-test-tls-'));
  const peer = await ensureIdentity(join(dir, 'peer'), 'test-peer');
  const mount = await ensureIdentity(join(dir, 'mount'), 'test-mount');
  // With roles, as a deployment's trust files have them (docs/SECURITY.md): peers read for pulls and relay, mounts own.
  writeFileSync(join(dir, 'trust'), `${peer.identity.fingerprint} test-peer roles=peer,relay\n${mount.identity.fingerprint} test-mount roles=mount,standby\n`);
  process.env.MIRRORFS_TEST_TLS_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
