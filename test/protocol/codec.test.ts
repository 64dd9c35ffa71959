import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, encodeResponseParts, responseResult, MAX_HEADER_BYTES } from '../../src/protocol/codec.js';
import { MirrorError, errnoNumber, isDeterministic, toMirrorError } from '../../src/protocol/errors.js';
import { fusePathToWire, parseWirePath } from '../../src/protocol/paths.js';

describe('frame codec', () => {
  it('round-trips a header and a binary payload', () => {
    const payload = Buffer.from([0, 255, 10, 13]);
    const f = decodeFrame(encodeFrame({ op: 'write', path: 'a' }, payload));
    expect(f.header).toEqual({ op: 'write', path: 'a' });
    expect(f.payload).toEqual(payload);
  });

  it('refuses oversized headers on both sides', () => {
    expect(() => encodeFrame({ big: 'x'.repeat(MAX_HEADER_BYTES) })).toThrow(/MFS_TOO_LARGE/);
    const b = Buffer.alloc(8);
    b.writeUInt32BE(MAX_HEADER_BYTES + 1);
    expect(() => decodeFrame(b)).toThrow(/MFS_TOO_LARGE/);
  });
});

describe('wire paths', () => {
  it('accepts relative paths and the root', () => {
    expect(parseWirePath('')).toEqual([]);
    expect(parseWirePath('a/b c/d.txt')).toEqual(['a', 'b c', 'd.txt']);
    expect(parseWirePath('ünïcødé/名前')).toEqual(['ünïcødé', '名前']);
  });

  it.each(['/a', '../a', 'a/..', 'a/./b', 'a//b', 'a/', 'a\0b', '.mirrorfs', '.mirrorfs/x', 'a/'.repeat(2100)])('refuses %j', (p) => {
    expect(() => parseWirePath(p)).toThrow(MirrorError);
  });

  it('refuses names over 255 bytes (multi-byte characters counted as bytes)', () => {
    expect(() => parseWirePath('é'.repeat(128))).toThrow(/ENAMETOOLONG|longer than 255/);
    expect(parseWirePath('é'.repeat(127))).toHaveLength(1);
  });

  it('converts FUSE paths', () => {
    expect(fusePathToWire('/')).toBe('');
    expect(fusePathToWire('/a/b')).toBe('a/b');
  });
});

describe('errors', () => {
  it('keeps errno names from the file system and maps them to numbers', () => {
    const e = toMirrorError(Object.assign(new Error('x'), { code: 'ENOENT' }), { op: 'unlink', path: 'a' });
    expect(e).toMatchObject({ errno: 'ENOENT', code: 'MFS_ERRNO' });
    expect(errnoNumber('ENOENT')).toBe(2);
    expect(errnoNumber('EBOGUS')).toBe(5);
  });

  it('turns unknown failures into EIO with MFS_INTERNAL', () => {
    expect(toMirrorError(new TypeError('boom'))).toMatchObject({ errno: 'EIO', code: 'MFS_INTERNAL' });
  });

  it('survives the wire with code, errno and message', () => {
    const e = new MirrorError('MFS_FENCED', 'epoch 1 < 2');
    const back = MirrorError.fromWire(e.toWire(), { peer: 'east' });
    expect(back).toMatchObject({ code: 'MFS_FENCED', errno: 'EROFS', message: 'MFS_FENCED: epoch 1 < 2', context: { peer: 'east' } });
  });

  it('treats only outcomes that depend on the tree as deterministic', () => {
    expect(isDeterministic('ENOENT')).toBe(true);
    expect(isDeterministic('ENOSPC')).toBe(false);
    expect(isDeterministic('EIO')).toBe(false);
  });

  it('sends a result too large for the header as JSON in the payload, and reads it back', () => {
    const entries = Array.from({ length: 3000 }, (_, i) => ({ name: `file-${i}`, stat: { size: i } }));
    const body = Buffer.concat(encodeResponseParts({ ok: true, result: { entries } }));
    const frame = decodeFrame(body);
    expect(frame.header).toEqual({ ok: true, resultInPayload: true });
    expect(responseResult(frame.header as { resultInPayload: true }, frame.payload)).toEqual({ result: { entries }, payload: Buffer.alloc(0) });
    // Small results stay in the header; an answer with its own payload cannot grow this way.
    expect(decodeFrame(Buffer.concat(encodeResponseParts({ ok: true, result: { n: 1 } }))).header).toEqual({ ok: true, result: { n: 1 } });
    expect(() => encodeResponseParts({ ok: true, result: { entries } }, Buffer.from('data'))).toThrow(/MFS_TOO_LARGE/);
    expect(() => responseResult({ resultInPayload: true }, Buffer.from('{not json'))).toThrow(/MFS_MALFORMED/);
  });
});
