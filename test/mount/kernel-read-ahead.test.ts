import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { KernelReadAhead, widenKernelReadAhead } from '../../src/mount/fuse/kernel-read-ahead.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/**
 * When the mount sets its read-ahead: only once both the device number and a first request
 * (FUSE's INIT done) are known, in either order, and once. The real sysfs write through a
 * mount is in read-peer.test.ts.
 */
describe('KernelReadAhead', () => {
  const log = silentLogger();
  afterAll(() => cleanupTmp());

  function recorder() {
    const calls: string[] = [];
    return { calls, widen: (device: string) => (calls.push(device), 1024) };
  }

  it('waits for the first request when the device is known first', () => {
    const { calls, widen } = recorder();
    const ra = new KernelReadAhead(log, widen);
    ra.deviceKnown('0:52');
    expect(calls).toEqual([]);
    ra.requestSeen();
    ra.requestSeen();
    expect(calls).toEqual(['0:52']);
  });

  it('waits for the device when a request comes first, and sets it once', () => {
    const { calls, widen } = recorder();
    const ra = new KernelReadAhead(log, widen);
    ra.requestSeen();
    expect(calls).toEqual([]);
    ra.deviceKnown('0:53');
    ra.requestSeen();
    ra.deviceKnown('0:53');
    expect(calls).toEqual(['0:53']);
  });

  it('sets nothing when the device is not found', () => {
    const { calls, widen } = recorder();
    const ra = new KernelReadAhead(log, widen);
    ra.requestSeen();
    ra.deviceKnown(null);
    expect(calls).toEqual([]);
  });

  it('writes the value into the device\'s read_ahead_kb, and reports what is in force when it cannot', () => {
    const sysfs = tmpDir('mirrorfs-bdi-');
    mkdirSync(join(sysfs, '0:54'));
    writeFileSync(join(sysfs, '0:54', 'read_ahead_kb'), '128\n');
    expect(widenKernelReadAhead('0:54', log, 1024, sysfs)).toBe(1024);
    expect(readFileSync(join(sysfs, '0:54', 'read_ahead_kb'), 'utf8')).toBe('1024\n');
    // No such device directory (as when sysfs refuses): nothing thrown, nothing known.
    expect(widenKernelReadAhead('0:55', log, 1024, sysfs)).toBeNull();
  });
});
