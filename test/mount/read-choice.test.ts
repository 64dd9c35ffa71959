import { describe, expect, it } from 'vitest';
import { keepReadPeer, READ_SWITCH_RATIO } from '../../src/mount/fanout/read-choice.js';

const peer = (name: string, latencyP50Us: number, healthy = true) => ({ name, latencyP50Us, healthy });

describe('which peer reads go to', () => {
  it('keeps the current read peer while the fastest is not clearly faster', () => {
    const east = peer('east', 1000);
    const west = peer('west', 900); // faster, but within the ratio
    expect(keepReadPeer([west, east], east).map((p) => p.name)).toEqual(['east', 'west']);
  });

  it('moves to a peer whose median is below the ratio of the current one\'s', () => {
    const east = peer('east', 1000);
    const west = peer('west', 1000 * READ_SWITCH_RATIO - 1);
    expect(keepReadPeer([west, east], east).map((p) => p.name)).toEqual(['west', 'east']);
  });

  it('does not keep an unhealthy or absent current peer, and leaves the order alone without one', () => {
    const east = peer('east', 1000, false);
    const west = peer('west', 2000);
    const south = peer('south', 3000);
    expect(keepReadPeer([west, east], east).map((p) => p.name)).toEqual(['west', 'east']);
    expect(keepReadPeer([west, south], east).map((p) => p.name)).toEqual(['west', 'south']);
    expect(keepReadPeer([west, south], null).map((p) => p.name)).toEqual(['west', 'south']);
    // kept from third place, the others keep their order
    const slowish = peer('slowish', 1200);
    expect(keepReadPeer([peer('a', 1000), peer('b', 1100), slowish], slowish).map((p) => p.name)).toEqual(['slowish', 'a', 'b']);
  });
});
