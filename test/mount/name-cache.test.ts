import { describe, expect, it } from 'vitest';
import type { WireStat } from '../../src/protocol/ops.js';
import { ABSENT, NameCache } from '../../src/mount/cache/name-cache.js';

/** The rules of the mount's cache of names (src/mount/cache/name-cache.ts); the end-to-end behaviour is in operations.test.ts. */

const stat = (type: WireStat['type'], extra: Partial<WireStat> = {}): WireStat => ({
  type, mode: type === 'dir' ? 0o40755 : 0o100644, uid: 0, gid: 0, size: 0, nlink: type === 'dir' ? 2 : 1, ino: 1, blocks: 0, atimeMs: 1, mtimeMs: 1, ctimeMs: 1, ...extra,
});

describe('the mount\'s cache of names', () => {
  it('knows a directory it made is empty, and keeps its listing up to date with its own changes', () => {
    const c = new NameCache();
    const mk = c.begin(['d'], true);
    c.end(mk, { ok: true, created: ['d'], madeEmpty: ['d'], stats: { d: stat('dir'), '': stat('dir') } });
    expect(c.lookup('d')).toMatchObject({ type: 'dir' });
    expect(c.lookup('d/f')).toBe(ABSENT);
    const cr = c.begin(['d/f'], true);
    expect(c.lookup('d/f')).toBeUndefined(); // in flight: ask a peer
    expect(c.lookup('d/g')).toBe(ABSENT); // the rest of the listing stands
    expect(c.lookup('d')).toBeUndefined(); // its attributes are changing
    c.end(cr, { ok: true, created: ['d/f'], stats: { 'd/f': stat('file'), d: stat('dir', { mtimeMs: 2 }) } });
    expect(c.lookup('d/f')).toMatchObject({ type: 'file' });
    expect(c.lookup('d')).toMatchObject({ mtimeMs: 2 });
    const rm = c.begin(['d/f'], true);
    c.end(rm, { ok: true, removed: ['d/f'], stats: { d: stat('dir', { mtimeMs: 3 }) } });
    expect(c.lookup('d/f')).toBe(ABSENT);
  });

  it('lists a directory itself only while every entry and the directory are known and quiet', () => {
    const c = new NameCache();
    c.end(c.begin(['d'], true), { ok: true, created: ['d'], madeEmpty: ['d'], stats: { d: stat('dir') } });
    expect(c.listed('d')).toEqual([]);
    expect(c.listed('e')).toBeUndefined(); // never listed
    c.end(c.begin(['d/a'], true), { ok: true, created: ['d/a'], stats: { 'd/a': stat('file', { size: 3 }) } });
    c.end(c.begin(['d/s'], true), { ok: true, created: ['d/s'], madeEmpty: ['d/s'], stats: { 'd/s': stat('dir') } });
    expect(c.listed('d')).toEqual([{ name: 'a', stat: stat('file', { size: 3 }) }, { name: 's', stat: stat('dir') }]);
    const write = c.begin(['d/a'], false); // a write in flight: a's attributes are changing
    expect(c.listed('d')).toBeUndefined();
    c.end(write, { ok: true, stats: { 'd/a': stat('file', { size: 9 }) } });
    expect(c.listed('d')?.find((e) => e.name === 'a')?.stat.size).toBe(9);
    const create = c.begin(['d/b'], true); // an entry on its way: the directory is in flight
    expect(c.listed('d')).toBeUndefined();
    c.end(create, { ok: true, created: ['d/b'], stats: { 'd/b': stat('file', { nlink: 2 }) } }); // a file with two links is not kept
    expect(c.listed('d')).toBeUndefined();
  });

  it('keeps a directory\'s attributes only from the last of two overlapping changes to begin', () => {
    const c = new NameCache();
    c.end(c.begin(['d'], true), { ok: true, created: ['d'], madeEmpty: ['d'], stats: { d: stat('dir') } });
    const a = c.begin(['d/a'], true);
    const b = c.begin(['d/b'], true);
    // b is answered first: a is still in flight, so d's attributes from b may miss a's entry.
    c.end(b, { ok: true, created: ['d/b'], stats: { 'd/b': stat('file'), d: stat('dir', { mtimeMs: 5 }) } });
    expect(c.lookup('d')).toBeUndefined();
    // a began before b: its view of d may be older than b's.
    c.end(a, { ok: true, created: ['d/a'], stats: { 'd/a': stat('file'), d: stat('dir', { mtimeMs: 4 }) } });
    expect(c.lookup('d')).toBeUndefined();
    expect(c.lookup('d/a')).toMatchObject({ type: 'file' });
    expect(c.lookup('d/b')).toMatchObject({ type: 'file' });
    expect(c.lookup('d/c')).toBe(ABSENT);
  });

  it('forgets what a failed change touched, and everything under a renamed or removed directory', () => {
    const c = new NameCache();
    c.end(c.begin(['d'], true), { ok: true, created: ['d'], madeEmpty: ['d'], stats: { d: stat('dir') } });
    c.end(c.begin(['d/e'], true), { ok: true, created: ['d/e'], madeEmpty: ['d/e'], stats: { 'd/e': stat('dir'), d: stat('dir') } });
    c.end(c.begin(['d/e/f'], true), { ok: true, created: ['d/e/f'], stats: { 'd/e/f': stat('file') } });
    c.end(c.begin(['d/x'], true), { ok: false }); // a create that failed (perhaps applied somewhere)
    expect(c.lookup('d/x')).toBeUndefined();
    expect(c.lookup('d/y')).toBeUndefined(); // d's listing is no longer trusted
    expect(c.lookup('d/e/g')).toBe(ABSENT);
    c.end(c.begin(['d/e', 'd/r'], true, ['d/e', 'd/r']), { ok: true, created: ['d/r'], removed: ['d/e'], stats: { 'd/r': stat('dir') } });
    expect(c.lookup('d/e/f')).toBeUndefined();
    expect(c.lookup('d/e/g')).toBeUndefined();
    expect(c.lookup('d/r')).toMatchObject({ type: 'dir' });
    expect(c.lookup('d/r/f')).toBeUndefined(); // moved, not known under its new name
  });

  it('does not keep a file with another link, and drops a stat a listing brought in while a change ran', () => {
    const c = new NameCache();
    const asked = c.generation;
    const w = c.begin(['f'], false);
    c.noteListing('', [{ name: 'f', stat: stat('file', { size: 1 }) }, { name: 'h', stat: stat('file', { nlink: 2 }) }], asked);
    expect(c.lookup('g')).toBeUndefined(); // the listing was fetched across a change: not kept
    c.end(w, { ok: true }); // a relay's answer carries no attributes
    expect(c.lookup('f')).toBeUndefined();
    const again = c.generation;
    c.noteListing('', [{ name: 'f', stat: stat('file', { size: 9 }) }, { name: 'h', stat: stat('file', { nlink: 2 }) }], again);
    expect(c.lookup('f')).toMatchObject({ size: 9 });
    expect(c.lookup('h')).toBeUndefined();
    expect(c.lookup('g')).toBe(ABSENT);
    c.clear();
    expect(c.lookup('f')).toBeUndefined();
    expect(c.lookup('g')).toBeUndefined();
  });

  it('does not keep a listing fetched while a change ended, nor attributes from changes that overlapped', () => {
    const c = new NameCache();
    c.end(c.begin(['d'], true), { ok: true, created: ['d'], madeEmpty: ['d'], stats: { d: stat('dir') } });
    c.end(c.begin(['d/f'], true), { ok: true, created: ['d/f'], stats: { 'd/f': stat('file') } });
    const w = c.begin(['d/f'], false);
    const asked = c.generation; // a listing asked for while the write is in flight...
    c.end(w, { ok: true, stats: { 'd/f': stat('file', { size: 10 }) } }); // ...and the write ends before it arrives
    c.noteListing('d', [{ name: 'f', stat: stat('file', { size: 0 }) }], asked);
    expect(c.lookup('d/f')).toMatchObject({ size: 10 });
    // Two changes in d at once: a peer may apply them in either order, so d's attributes are not kept.
    const a = c.begin(['d/a'], true);
    const b = c.begin(['d/b'], true);
    c.end(a, { ok: true, created: ['d/a'], stats: { d: stat('dir', { mtimeMs: 7 }) } });
    c.end(b, { ok: true, created: ['d/b'], stats: { d: stat('dir', { mtimeMs: 6 }) } });
    expect(c.lookup('d')).toBeUndefined();
    // A rename's subtree is dropped again when it ends (a listing may have landed in between).
    const r = c.begin(['d', 'e'], true, ['d', 'e']);
    c.noteListing('d', [{ name: 'f', stat: stat('file') }], c.generation);
    c.end(r, { ok: true, created: ['e'], removed: ['d'], stats: { e: stat('dir') } });
    expect(c.lookup('d/f')).toBeUndefined();
    expect(c.size.listings).toBe(0);
  });

  it('drops a subtree by visiting only what it holds, and keeps within its budget of names', () => {
    const c = new NameCache();
    for (let d = 0; d < 50; d++) {
      c.noteListing(`dir${d}`, Array.from({ length: 20_000 }, (_, i) => ({ name: `f${i}`, stat: stat('file') })), c.generation);
    }
    expect(c.size.listedNames).toBeLessThanOrEqual(NameCache.MAX_LISTED_NAMES);
    expect(c.size.stats).toBeLessThanOrEqual(NameCache.MAX_STATS);
    expect(c.lookup('dir49/f1')).toMatchObject({ type: 'file' }); // the newest are kept
    c.end(c.begin(['dir49', 'moved'], true, ['dir49', 'moved']), { ok: true, created: ['moved'], removed: ['dir49'] });
    expect(c.lookup('dir49/f1')).toBeUndefined();
    expect(c.lookup('dir48/f1')).toMatchObject({ type: 'file' });
  });

  it('drops what is held two levels under a renamed directory even when the level between holds nothing', () => {
    const c = new NameCache();
    // A write to an existing file caches only that file: a/b itself holds nothing.
    c.end(c.begin(['a/b/c'], false), { ok: true, stats: { 'a/b/c': stat('file', { size: 10 }) } });
    expect(c.lookup('a/b/c')).toMatchObject({ size: 10 });
    c.end(c.begin(['a', 'z'], true, ['a', 'z']), { ok: true, created: ['z'], removed: ['a'], stats: { z: stat('dir') } });
    expect(c.lookup('a/b/c')).toBeUndefined();
    expect(c.lookup('z/b/c')).toBeUndefined();
    // The same through a whole-tree repair (verify --repair holds the root).
    c.end(c.begin(['q/r/s'], false), { ok: true, stats: { 'q/r/s': stat('file') } });
    c.end(c.begin([''], true, ['']), { ok: false });
    expect(c.lookup('q/r/s')).toBeUndefined();
    expect(c.size).toEqual({ stats: 0, listings: 0, listedNames: 0 });
  });

  it('renames a directory holding more entries than a call\'s arguments may, and bounds empty listings too', () => {
    const c = new NameCache();
    c.end(c.begin(['big'], true), { ok: true, created: ['big'], madeEmpty: ['big'], stats: { big: stat('dir') } });
    for (let i = 0; i < 140_000; i++) {
      c.end(c.begin([`big/d${i}`], true), { ok: true, created: [`big/d${i}`], madeEmpty: [`big/d${i}`], stats: { [`big/d${i}`]: stat('dir') } });
    }
    expect(c.size.listedNames).toBeLessThanOrEqual(NameCache.MAX_LISTED_NAMES);
    expect(() => c.end(c.begin(['big', 'big2'], true, ['big', 'big2']), { ok: true, created: ['big2'], removed: ['big'] })).not.toThrow();
    expect(c.lookup('big/d139999')).toBeUndefined();
    expect(c.size).toEqual({ stats: 0, listings: 0, listedNames: 0 });
  });
});
