import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVICE_V8_FLAGS } from '../../src/cli/node-flags.js';
import { loadConfig } from '../../src/mount/peers/config.js';
import { runCollect } from '../helpers/child.js';
import { MIRRORFS_BIN, isMounted, lazyUnmount } from '../helpers/mount.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** examples/ stays true: the walkthrough runs as written, the config file loads, the units verify. */

const EXAMPLES = resolve(import.meta.dirname, '../../examples');
let workDir: string | null = null;

afterEach(() => {
  if (workDir && isMounted(join(workDir, 'data'))) lazyUnmount(join(workDir, 'data'));
  workDir = null;
  cleanupTmp();
});

describe('examples', () => {
  it('the walkthrough in examples/README.md runs as written: init, trust, peers, doctor, mount, an outage, verify, unmount', async () => {
    const blocks = [...readFileSync(join(EXAMPLES, 'README.md'), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    const bin = tmpDir('mirrorfs-bin-');
    const installed = await runCollect(process.execPath, [MIRRORFS_BIN, 'install-helpers', '--bin', bin]);
    expect(installed.code, installed.stderr).toBe(0);
    // The long-running commands start node with the service's V8 flags (src/cli/node-flags.ts).
    for (const command of ['mirrorfs', 'mirrorfs-peer']) expect(readFileSync(join(bin, command), 'utf8')).toContain(` '${SERVICE_V8_FLAGS[0]}' `);
    workDir = tmpDir('mirrorfs-walkthrough-');
    // Whatever happens, nothing is left running or mounted.
    const script = [
      'set -euo pipefail',
      `export PATH=${bin}:$PATH W=${workDir}`,
      'trap \'mirrorfs unmount $W/data >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true\' EXIT',
      ...blocks,
    ].join('\n');
    const r = await runCollect('bash', ['-c', script], 180_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/no problems found/);
    expect(r.stdout).toMatch(/hello\nhello\n/);
    expect(r.stdout).toMatch(/^mirrorfs_peer_operations_total\{peer="west",op="create",outcome="ok"\} 1$/m);
    expect(r.stdout).toMatch(/^west +https:\/\/127\.0\.0\.1:7072 +down since/m);
    expect(r.stdout).toMatch(/^written while west is down$/m);
    expect(r.stdout).toMatch(/the copies are equal/);
    expect(r.stdout).toMatch(/unmounted/);
    expect(isMounted(join(workDir, 'data'))).toBe(false);
  });

  it('the commented config file loads, and the systemd units verify', async () => {
    const config = loadConfig(join(EXAMPLES, 'config.jsonc'));
    expect(Object.keys(config.peers)).toEqual(['east', 'west']);
    expect(config.peers.west!.routes).toHaveLength(2);
    expect(config.tlsIdentity).toBe('/etc/mirrorfs/tls');
    const units = readdirSync(join(EXAMPLES, 'systemd')).map((f) => join(EXAMPLES, 'systemd', f));
    expect(units).toHaveLength(3);
    const r = await runCollect('systemd-analyze', ['verify', '--man=no', ...units]);
    // Only the binaries' absence on this machine may be reported (they live in /usr/local/bin after install-helpers).
    const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && !/\/usr\/local\/bin\/mirrorfs(-peer)? is not executable|Command \/usr\/local\/bin/.test(l));
    expect(complaints).toEqual([]);
  });
});
