import { describe, expect, it } from 'vitest';
import { SERVICE_V8_FLAGS, withServiceFlags } from '../../src/cli/node-flags.js';

describe('service V8 flags', () => {
  it('are added to a process\'s node flags, and a flag the user gave keeps the user\'s value', () => {
    expect(withServiceFlags([], '')).toEqual([...SERVICE_V8_FLAGS]);
    expect(withServiceFlags(['--inspect'], '')).toEqual(['--inspect', ...SERVICE_V8_FLAGS]);
    const name = SERVICE_V8_FLAGS[0]!.split('=')[0]!;
    expect(withServiceFlags([`${name}=32`], '')).toEqual([`${name}=32`]);
    expect(withServiceFlags([`${name.replace(/-/g, '_').replace(/^__/, '--')}=32`], '')).toHaveLength(1);
    expect(withServiceFlags([], `--trace-warnings ${name}=64`)).toEqual([]);
  });
});
