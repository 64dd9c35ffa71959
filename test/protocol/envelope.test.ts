import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocol/codec.js';
import { BufferPool } from '../../src/protocol/buffer-pool.js';
import { EnvelopeReader, MAX_ENVELOPE_BYTES, POOLED_MIN_BYTES, encodeEnvelope } from '../../src/protocol/envelope.js';

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

  describe('with a pool of buffers', () => {
    const big = (fill: number) => encodeFrame({ op: 'write', path: 'big' }, Buffer.alloc(POOLED_MIN_BYTES + 1000, fill));

    it('put large envelopes that arrive in pieces together in pooled buffers, reused once released, each whole', () => {
      const pool = new BufferPool(POOLED_MIN_BYTES * 2, 4);
      const got: Array<{ id: number; hex: string; frame: Buffer; release?: () => void }> = [];
      const reader = new EnvelopeReader((id, frame, release) => got.push({ id, hex: frame.toString('hex'), frame, release }), pool);
      const frames = [big(1), big(2), big(3)];
      const bytes = Buffer.concat(frames.flatMap((f, i) => encodeEnvelope(i + 1, [f])));
      for (let at = 0; at < bytes.length; at += 16 * 1024) reader.push(bytes.subarray(at, at + 16 * 1024));
      expect(got.map((g) => g.id)).toEqual([1, 2, 3]);
      got.forEach((g, i) => expect(g.hex).toBe(frames[i]!.toString('hex')));
      // Three at once: three buffers, none shared.
      expect(pool.inUse).toBe(3);
      expect(new Set(got.map((g) => g.frame.buffer)).size).toBe(3);
      for (const g of got) g.release!();
      expect(pool.inUse).toBe(0);
      // The next ones reuse them: nothing new is allocated.
      const again: Array<{ hex: string; release?: () => void }> = [];
      const reader2 = new EnvelopeReader((_id, frame, release) => again.push({ hex: frame.toString('hex'), release }), pool);
      for (let at = 0; at < bytes.length; at += 16 * 1024) reader2.push(bytes.subarray(at, at + 16 * 1024));
      again.forEach((g, i) => expect(g.hex).toBe(frames[i]!.toString('hex')));
      expect(pool.allocated).toBe(3);
      for (const g of again) g.release!();
    });

    it('hand out small envelopes, envelopes larger than its buffers and envelopes in one piece without a pooled buffer', () => {
      const pool = new BufferPool(POOLED_MIN_BYTES * 2, 4);
      const releases: Array<(() => void) | undefined> = [];
      const reader = new EnvelopeReader((_id, _frame, release) => releases.push(release), pool);
      const small = Buffer.concat(encodeEnvelope(1, [encodeFrame({ op: 'mkdir', path: 'a' })]));
      reader.push(small.subarray(0, 10));
      reader.push(small.subarray(10));
      const huge = Buffer.concat(encodeEnvelope(2, [encodeFrame({ op: 'write', path: 'h' }, Buffer.alloc(POOLED_MIN_BYTES * 3))]));
      reader.push(huge.subarray(0, 1000));
      reader.push(huge.subarray(1000));
      reader.push(Buffer.concat(encodeEnvelope(3, [big(4)])));
      expect(releases).toEqual([undefined, undefined, undefined]);
      expect(pool.allocated).toBe(0);
    });
  });
});

