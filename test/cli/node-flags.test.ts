import { describe, expect, it } from 'vitest';
import { SERVICE_V8_FLAGS, withServiceFlags } from '../../src/cli/node-flags.js';

describe('service V8 flags', () => {
  it('are added to a process\'s node flags, and a flag the user gave keeps the user\'s value', () => {
    expect(withServiceFlags([], '')).toEqual([...SERVICE_V8_FLAGS]);
    expect(withServiceFlags(['--inspect'], '')).toEqual(['--inspect', ...SERVICE_V8_FLAGS]);
    const name = SERVICE_V8_FLAGS[0]!.split('=')[0]!;
    const others = SERVICE_V8_FLAGS.slice(1);
    expect(withServiceFlags([`${name}=32`], '')).toEqual([`${name}=32`, ...others]);
    expect(withServiceFlags([`${name.replace(/-/g, '_').replace(/^__/, '--')}=32`], '')).toHaveLength(SERVICE_V8_FLAGS.length);
    expect(withServiceFlags([], `--trace-warnings ${name}=64`)).toEqual(others);
    expect(withServiceFlags([], SERVICE_V8_FLAGS.join(' '))).toEqual([]);
  });

  it('a flag the user turned off (--no-x) is not turned on again', () => {
    expect(withServiceFlags(['--no-optimize-for-size'], '', ['--optimize-for-size'])).toEqual(['--no-optimize-for-size']);
    expect(withServiceFlags([], '--no-optimize-for-size', ['--optimize-for-size'])).toEqual([]);
    expect(withServiceFlags([], '', ['--optimize-for-size'])).toEqual(['--optimize-for-size']);
  });
});
