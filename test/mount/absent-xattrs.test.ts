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

  it('takes a listed entry\'s xattr names as complete: every other name is absent, until a change', () => {
    const c = new AbsentXattrs();
    c.noteComplete('d/f', ['user.note'], c.generation);
    expect(c.isAbsent('d/f', 'security.selinux')).toBe(true);
    expect(c.isAbsent('d/f', 'user.note')).toBe(false);
    expect(c.isAbsent('d/g', 'security.selinux')).toBe(false); // not listed: not known
    c.forgetName('d/f'); // made anew
    expect(c.isAbsent('d/f', 'security.selinux')).toBe(false);
    c.noteComplete('d/f', [], c.generation);
    c.forget('d');
    expect(c.isAbsent('d/f', 'security.selinux')).toBe(false);
    c.noteComplete('d/f', [], c.generation);
    c.clear(); // a setxattr anywhere
    expect(c.isAbsent('d/f', 'user.x')).toBe(false);
    const asked = c.generation;
    c.forgetName('e'); // a change while the listing was on its way
    c.noteComplete('d/f', [], asked);
    expect(c.isAbsent('d/f', 'user.x')).toBe(false);
  });
});
