import { describe, expect, it } from 'vitest';
import { AbsentXattrs } from '../../src/mount/cache/absent-xattrs.js';

describe('the cache of absent xattrs', () => {
  it('remembers an absence until a change could make it wrong', () => {
    const c = new AbsentXattrs();
    c.noteAbsent('d/f', 'security.capability', c.generation);
    expect(c.isAbsent('d/f', 'security.capability')).toBe(true);
    expect(c.isAbsent('d/f', 'user.x')).toBe(false);
    c.forget('d'); // a rename or rmdir of a directory above
    expect(c.isAbsent('d/f', 'security.capability')).toBe(false);
    c.noteAbsent('d/g', 'user.x', c.generation);
    c.clear(); // any setxattr/removexattr (hard links make paths unreliable)
    expect(c.isAbsent('d/g', 'user.x')).toBe(false);
  });

  it('does not cache an answer fetched across a change', () => {
    const c = new AbsentXattrs();
    const asked = c.generation;
    c.clear(); // a setxattr began while the getxattr was in flight
    c.noteAbsent('f', 'user.x', asked);
    expect(c.isAbsent('f', 'user.x')).toBe(false);
  });
});
