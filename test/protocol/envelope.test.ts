import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocol/codec.js';
import { EnvelopeReader, MAX_ENVELOPE_BYTES, encodeEnvelope } from '../../src/protocol/envelope.js';

function collect(): { reader: EnvelopeReader; got: Array<[number, string]> } {
  const got: Array<[number, string]> = [];
  const reader = new EnvelopeReader((id, frame) => got.push([id, frame.toString('hex')]));
  return { reader, got };
}

describe('channel envelopes', () => {
  const frames = [encodeFrame({ op: 'mkdir', path: 'a' }), encodeFrame({ op: 'write', path: 'b' }, Buffer.alloc(300, 7)), encodeFrame({})];
  const wire = Buffer.concat(frames.flatMap((f, i) => encodeEnvelope(1000 + i, [f])));
  const expected = frames.map((f, i) => [1000 + i, f.toString('hex')]);

  it('come out whole and in order however the bytes are cut', () => {
    for (let cut = 1; cut <= wire.length; cut++) {
      const { reader, got } = collect();
      for (let at = 0; at < wire.length; at += cut) reader.push(wire.subarray(at, at + cut));
      expect(got, `cut every ${cut} bytes`).toEqual(expected);
      expect(reader.buffered).toBe(0);
    }
  });

  it('hold a partial envelope until the rest arrives', () => {
    const { reader, got } = collect();
    reader.push(wire.subarray(0, 20));
    expect(got).toEqual([]);
    expect(reader.buffered).toBe(20);
    reader.push(wire.subarray(20));
    expect(got).toEqual(expected);
  });

  it('refuse a length over the limit before buffering it, and one too short for an id', () => {
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(MAX_ENVELOPE_BYTES + 1, 0);
    expect(() => collect().reader.push(huge)).toThrow(/MFS_TOO_LARGE|exceeds the limit/);
    const short = Buffer.from([0, 0, 0, 3, 1, 2, 3]);
    expect(() => collect().reader.push(short)).toThrow(/shorter than its call id/);
  });

  it('carry a frame given as parts without joining them', () => {
    const parts = encodeEnvelope(5, [Buffer.from('ab'), Buffer.from('cde')]);
    expect(parts.length).toBe(3);
    expect(Buffer.concat(parts).toString('hex')).toBe('00000009' + '00000005' + Buffer.from('abcde').toString('hex'));
  });
});
