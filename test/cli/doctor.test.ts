import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupMounts, mirrorfsCli, mountArgs, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer, type PeerProcess } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** mirrorfs doctor against a healthy setup and a broken one, through the real CLI and real peers. */

const tmpfsMounts: string[] = [];

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  for (const dir of tmpfsMounts.splice(0)) execFileSync('umount', ['-l', dir]);
  cleanupTmp();
});

interface Finding { check: string; ok: boolean; detail: string; fix?: string }

async function doctor(mountpoint: string, peers: PeerProcess[], extra: string[] = []): Promise<{ code: number | null; text: string; findings: Finding[] }> {
  const args = mountArgs(mountpoint, peers, join(tmpDir('mirrorfs-doctor-state-'), 'state'), undefined, extra);
  args[0] = 'doctor';
  const text = await mirrorfsCli(args);
  const json = await mirrorfsCli([...args, '--json']);
  expect(json.code).toBe(text.code);
  return { code: text.code, text: text.stdout, findings: (JSON.parse(json.stdout) as { findings: Finding[] }).findings };
}

const find = (findings: Finding[], pattern: RegExp) => {
  const f = findings.find((x) => pattern.test(x.check));
  if (!f) throw new Error(`no finding matches ${pattern}: ${JSON.stringify(findings.map((x) => x.check))}`);
  return f;
};

describe('mirrorfs doctor', () => {
  it('finds nothing wrong with a healthy setup', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const mountpoint = join(tmpDir('mirrorfs-doctor-'), 'mnt');
    mkdirSync(mountpoint);
    const r = await doctor(mountpoint, [east, west]);
    expect(r.code, r.text).toBe(0);
    expect(r.findings.every((f) => f.ok)).toBe(true);
    expect(r.text).toMatch(/^ok +FUSE device: \/dev\/fuse is usable$/m);
    expect(r.text).toMatch(/^ok +peer east \(https:\/\/127\.0\.0\.1:\d+\) reachable: answers as east .*round trip p50 [\d.]+ ms/m);
    expect(r.text).toMatch(/^ok +peer west .* clock: skew [+-]\d+ ms against this host$/m);
    expect(r.text).toMatch(/^ok +peer west .* durability: changes applied before acknowledgement, flushed every 1000 ms \(last flush \S+ ms\), data on \S+$/m);
    expect(r.text).toMatch(/no problems found\n$/);
    // The same mount point with a live mount on it: not a problem, the peers are still checked.
    const mount = await startMount({ peers: [east, west], mountpoint });
    const live = await doctor(mount.mountpoint, [east, west]);
    expect(live.code, live.text).toBe(0);
    expect(live.text).toMatch(/^ok +mount point .*: mounted now by mirrorfs \(pid \d+\)/m);
  });

  it('diagnoses a broken setup, each problem with its fix: a full mount point, a skewed clock, a peer on tmpfs short of space, a peer that is down', async () => {
    const east = await spawnPeer({ name: 'east' });
    // libfaketime in the peer process itself (the faketime command would fork, leaving a process a kill misses).
    const libfaketime = execFileSync('sh', ['-c', 'ls /usr/lib/*/faketime/libfaketime.so.1 | head -1']).toString().trim();
    expect(libfaketime, 'libfaketime (Debian package faketime, installed by scripts/setup.sh)').not.toBe('');
    const skewed = await spawnPeer({ name: 'west', env: { LD_PRELOAD: libfaketime, FAKETIME: '+300s' } });
    const ramDir = tmpDir('mirrorfs-ram-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', ramDir]);
    tmpfsMounts.push(ramDir);
    const ram = await spawnPeer({ name: 'ram', dataDir: join(ramDir, 'data') });
    const gone = { ...east, name: 'gone', url: 'https://127.0.0.1:1' };
    const mountpoint = join(tmpDir('mirrorfs-doctor-'), 'mnt');
    mkdirSync(mountpoint);
    writeFileSync(join(mountpoint, 'left-behind'), 'x');
    const r = await doctor(mountpoint, [east, skewed, ram, gone]);
    expect(r.code).toBe(1);
    const mp = find(r.findings, /^mount point/);
    expect(mp).toMatchObject({ ok: false, fix: expect.stringMatching(/empty directory/) });
    expect(mp.detail).toMatch(/is not empty/);
    const clock = find(r.findings, /^peer west .* clock$/);
    expect(clock).toMatchObject({ ok: false, fix: expect.stringMatching(/NTP/) });
    expect(clock.detail).toMatch(/its clock is \+(29\d|30\d)\.\d s off this host's/);
    const durability = find(r.findings, /^peer ram .* durability$/);
    expect(durability).toMatchObject({ ok: false, fix: expect.stringMatching(/disk-backed/) });
    expect(durability.detail).toMatch(/is on tmpfs: a flush reaches memory only/);
    expect(find(r.findings, /^peer ram .* free space$/)).toMatchObject({ ok: false, detail: expect.stringMatching(/0\.0 GiB free of 0\.0 GiB/) });
    expect(find(r.findings, /^peer gone/)).toMatchObject({ ok: false, detail: expect.stringMatching(/unreachable.*ECONNREFUSED/), fix: expect.stringMatching(/start mirrorfs-peer there/) });
    // The healthy peer is reported healthy, and nothing else is flagged.
    expect(r.findings.filter((f) => /^peer east/.test(f.check)).every((f) => f.ok)).toBe(true);
    expect(r.findings.filter((f) => !f.ok)).toHaveLength(5);
    expect(r.text).toMatch(/^FAIL +peer west .* clock: .*\n +fix: run NTP/m);
    expect(r.text).toMatch(/5 problems found\n$/);
  });

  it('reports a missing TLS identity with its fix, and still checks FUSE and the mount point', async () => {
    const east = await spawnPeer({ name: 'east' });
    const mountpoint = join(tmpDir('mirrorfs-doctor-'), 'mnt');
    mkdirSync(mountpoint);
    const r = await doctor(mountpoint, [east], ['--tls-identity', join(tmpDir('mirrorfs-none-'), 'tls')]);
    expect(r.code).toBe(1);
    expect(find(r.findings, /^configuration$/)).toMatchObject({ ok: false, detail: expect.stringMatching(/no TLS identity/), fix: expect.stringMatching(/^mirrorfs init --tls-identity /) });
    expect(find(r.findings, /^FUSE device$/).ok).toBe(true);
    expect(find(r.findings, /^mount point/).ok).toBe(true);
  });
});
