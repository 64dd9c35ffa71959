import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MountWatch, type KernelTables, type MountInfo } from '../../src/mount/control/mount-watch.js';

/**
 * The watch's rules against kernel tables given by the test: the kernel reuses a
 * freed FUSE device number (and its fusectl directory name) for the next mount at
 * once, which made the watch miss an umount when mounts came and went beside it.
 * The real path (umount, umount -l, a symlinked mount point) is covered end to end
 * in unmount-outside.test.ts and cli/mount-helper.test.ts.
 */
describe('MountWatch', () => {
  const point = '/srv/data';
  let table: MountInfo[];
  let inodes: Map<string, number>;
  let gone: string[];
  const kernel: KernelTables = {
    ensureFusectl: () => {},
    readMountInfo: () => table,
    connectionInode: (device) => inodes.get(device) ?? null,
  };
  const log = silentLogger();

  beforeEach(() => {
    vi.useFakeTimers();
    table = [{ device: '0:40', point, type: 'fuse.mirrorfs' }];
    inodes = new Map([['0:40', 1001]]);
    gone = [];
  });
  afterEach(() => vi.useRealTimers());

  function watch(): MountWatch {
    const w = new MountWatch(point, (reason) => gone.push(reason), log, 1000, kernel);
    w.start();
    return w;
  }

  it('stays quiet while the mount is listed, and stops after two misses once it is gone', () => {
    const w = watch();
    vi.advanceTimersByTime(5000);
    expect(gone).toEqual([]);
    table = [];
    inodes.clear();
    vi.advanceTimersByTime(1000);
    expect(gone).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(gone).toEqual(['unmounted by umount(8)']);
    vi.advanceTimersByTime(5000);
    expect(gone).toHaveLength(1);
    w.stop();
  });

  it('takes the newest of two mounts stacked at its point as its own (the one on top)', () => {
    table = [
      { device: '0:39', point, type: 'fuse.mirrorfs' },
      { device: '0:40', point, type: 'fuse.mirrorfs' },
    ];
    const w = watch();
    expect(w.deviceNumber).toBe('0:40');
    w.stop();
  });

  it('a device number reused by another mount at another point is not taken for this mount', () => {
    watch();
    table = [{ device: '0:40', point: '/srv/other', type: 'fuse.mirrorfs' }];
    inodes = new Map([['0:40', 2002]]);
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual(['unmounted by umount(8)']);
  });

  it('a reused number at the same mount point (umount, then mount again at once) is not taken for this mount', () => {
    watch();
    inodes = new Map([['0:40', 2002]]); // the same table line, a new connection
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual(['unmounted by umount(8)']);
  });

  it('a mount point moved elsewhere (mount --move) is still this mount while its connection is', () => {
    const w = watch();
    table = [{ device: '0:40', point: '/srv/moved', type: 'fuse.mirrorfs' }];
    vi.advanceTimersByTime(5000);
    expect(gone).toEqual([]);
    w.stop();
  });

  it('without fusectl: judged by device and mount point', () => {
    inodes.clear();
    const w = watch();
    vi.advanceTimersByTime(3000);
    expect(gone).toEqual([]);
    table = [{ device: '0:40', point: '/srv/other', type: 'fuse.mirrorfs' }];
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual(['unmounted by umount(8)']);
    w.stop();
  });

  it('a reused number whose new mount was lazily detached (its fusectl directory lives on) is not taken for this mount', () => {
    watch();
    table = [];
    inodes = new Map([['0:40', 2002]]);
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual(['unmounted by umount(8)']);
  });

  it('a lazy unmount keeps serving while this connection lives, then stops when it ends', () => {
    watch();
    table = [];
    vi.advanceTimersByTime(10_000);
    expect(gone).toEqual([]);
    inodes.clear();
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual(['lazily unmounted, and the last open file closed']);
  });

  it('a mount the tables never listed is not watched (and says so), and an unreadable table is no unmount', () => {
    table = [];
    const w = watch();
    vi.advanceTimersByTime(5000);
    expect(gone).toEqual([]);
    w.stop();
    table = [{ device: '0:40', point, type: 'fuse.mirrorfs' }];
    const w2 = watch();
    const readable = kernel.readMountInfo;
    kernel.readMountInfo = () => {
      throw new Error('EIO reading /proc/self/mountinfo');
    };
    try {
      vi.advanceTimersByTime(5000);
      expect(gone).toEqual([]);
    } finally {
      w2.stop();
      kernel.readMountInfo = readable;
    }
  });
});
