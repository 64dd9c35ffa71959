import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bytesOfWire, checkCanonicalWire, fsDirname, fsPath, fsPathEquals, latin1FromWire, printable, queryValueOfWire, wireByteLength, wireFromBytes, wireFromLatin1, wireQueryParam,
} from '../../src/protocol/byte-names.js';
import { parseWirePath } from '../../src/protocol/paths.js';

const hex = (s: string) => Buffer.from(s.replace(/ /g, ''), 'hex');

describe('names as bytes on the wire (surrogateescape)', () => {
  it('valid UTF-8 is carried as the text it is; other bytes as U+DC80..U+DCFF', () => {
    expect(wireFromBytes(Buffer.from('café 😀'))).toBe('café 😀');
    expect(wireFromBytes(hex('636166e9'))).toBe('caf\udce9');
    expect(wireFromBytes(hex('ff fe'))).toBe('\udcff\udcfe');
    // a cut sequence, an overlong "/", an encoded surrogate, beyond U+10FFFF: each byte escaped
    expect(wireFromBytes(hex('c3 41'))).toBe('\udcc3A');
    expect(wireFromBytes(hex('c0 af'))).toBe('\udcc0\udcaf');
    expect(wireFromBytes(hex('ed a0 80'))).toBe('\udced\udca0\udc80');
    expect(wireFromBytes(hex('f4 90 80 80'))).toBe('\udcf4\udc90\udc80\udc80');
    // U+FFFD spelt out is a name of its own, not a stand-in for a bad byte
    expect(wireFromBytes(hex('ef bf bd'))).toBe('\uFFFD');
  });

  it('every byte string survives the round trip, through JSON too, and has one canonical form', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(1 + (i % 40));
      const wire = wireFromBytes(bytes);
      expect(bytesOfWire(wire).equals(bytes)).toBe(true);
      expect(bytesOfWire(JSON.parse(JSON.stringify(wire)) as string).equals(bytes)).toBe(true);
      expect(wireByteLength(wire)).toBe(bytes.length);
      expect(() => checkCanonicalWire(wire)).not.toThrow();
      expect(latin1FromWire(wireFromLatin1(bytes.toString('latin1')))).toBe(bytes.toString('latin1'));
    }
  });

  it('refuses a wire form that no byte string has, or that spells valid UTF-8 as escaped bytes', () => {
    expect(() => bytesOfWire('a\ud800b')).toThrow(/lone surrogate/);
    expect(() => bytesOfWire('a\udc41')).toThrow(/lone surrogate/); // below U+DC80: not an escaped byte
    expect(() => checkCanonicalWire('caf\udcc3\udca9')).toThrow(/canonical/); // C3 A9 is "é"
    expect(() => parseWirePath('dir/caf\udcc3\udca9')).toThrow(/canonical/);
    expect(parseWirePath('dir/caf\udce9')).toEqual(['dir', 'caf\udce9']);
  });

  it('counts NAME_MAX in bytes: 255 escaped bytes fit, 256 do not', () => {
    expect(parseWirePath(wireFromBytes(Buffer.alloc(255, 0xe9)))).toHaveLength(1);
    expect(() => parseWirePath(wireFromBytes(Buffer.alloc(256, 0xe9)))).toThrow(/longer than 255 bytes/);
  });

  it('gives system calls a Buffer only when a name is not UTF-8', () => {
    expect(fsPath('a/b')).toBe('a/b');
    expect(fsPath('a/caf\udce9')).toEqual(hex('612f636166e9'));
    expect(fsDirname(fsPath('d\udcff/x'))).toEqual(hex('64ff'));
    expect(fsDirname('d/x')).toBe('d');
    expect(fsPathEquals(fsPath('d\udcff'), hex('64ff'))).toBe(true);
    expect(fsPathEquals('d', hex('64ff'))).toBe(false);
  });

  it('shows escaped bytes to people as \\xNN', () => {
    expect(printable(wireFromBytes(hex('636166e9 2f 2d ff')))).toBe('caf\\xe9/-\\xff');
    expect(printable('café 😀')).toBe('café 😀');
  });

  it('carries any bytes in a query parameter', () => {
    for (const wire of ['plain/path', 'caf\udce9/x y+z&w=1', 'é/%41', '\udcff']) {
      expect(wireQueryParam(`/v1/manifest?content=0&path=${queryValueOfWire(wire)}`, 'path')).toBe(wire);
    }
    expect(wireQueryParam('/v1/manifest?content=0', 'path')).toBeNull();
  });
});
