import { describe, expect, it } from 'vitest';
import { MAX_FIRST_EPOCH, handshakeRefusal, ownershipRefusal } from '../../src/peer/ownership.js';

/** The peer's ownership rules, as pure functions of who owns it now (the wire tests cover them through a peer). */

const owned = { epoch: 5, owner: 'm1', ownerSince: '2026-01-01T00:00:00.000Z', ownerKey: 'KEY-1' };
const fresh = { epoch: 0, owner: null, ownerSince: null, ownerKey: null };

describe('ownershipRefusal', () => {
  it('lets the owner in at its epoch', () => {
    expect(ownershipRefusal(owned, undefined, { mount: 'm1', epoch: 5 })).toBeNull();
  });

  it('fences an older epoch, asks a newer one to handshake first, refuses another mount', () => {
    expect(ownershipRefusal(owned, undefined, { mount: 'm1', epoch: 4 })?.code).toBe('MFS_FENCED');
    expect(ownershipRefusal(owned, undefined, { mount: 'm1', epoch: 6 })?.code).toBe('MFS_NO_HANDSHAKE');
    expect(ownershipRefusal(owned, undefined, { mount: 'm2', epoch: 5 })?.code).toBe('MFS_NOT_OWNER');
  });

  it('fences an epoch the next hop refused for good, and only up to it', () => {
    expect(ownershipRefusal(owned, 5, { mount: 'm1', epoch: 5 })?.code).toBe('MFS_FENCED');
    expect(ownershipRefusal(owned, 4, { mount: 'm1', epoch: 5 })).toBeNull();
  });

  it('checks in order: an older epoch is fenced before anything else', () => {
    expect(ownershipRefusal(owned, 9, { mount: 'm2', epoch: 4 })?.message).toContain('peer is at epoch 5');
  });
});

describe('handshakeRefusal', () => {
  it('takes the same epoch from the certificate that took it, the next one from any, and a first owner', () => {
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 5 }, 'KEY-1')).toBeNull();
    expect(handshakeRefusal(owned, { mount: 'm2', epoch: 6 }, 'KEY-2')).toBeNull();
    expect(handshakeRefusal(fresh, { mount: 'm2', epoch: 1 }, 'KEY-2')).toBeNull();
    // A peer that never had an owner joins a set at the set's epoch.
    expect(handshakeRefusal(fresh, { mount: 'm2', epoch: 40 }, 'KEY-2')).toBeNull();
    // Cleartext: nothing to bind.
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 5 }, null)).toBeNull();
  });

  it('fences an older epoch, refuses another mount or another certificate at the same one', () => {
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 4 }, 'KEY-1')?.code).toBe('MFS_FENCED');
    expect(handshakeRefusal(owned, { mount: 'm2', epoch: 5 }, 'KEY-1')?.code).toBe('MFS_NOT_OWNER');
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 5 }, 'KEY-2')?.code).toBe('MFS_NOT_OWNER');
  });

  it('advances one epoch at a time, and refuses an absurd first epoch', () => {
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 7 }, 'KEY-1')?.code).toBe('MFS_EPOCH_SKIP');
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: Number.MAX_SAFE_INTEGER }, 'KEY-1')?.code).toBe('MFS_EPOCH_SKIP');
    expect(handshakeRefusal(fresh, { mount: 'm1', epoch: MAX_FIRST_EPOCH }, 'KEY-1')).toBeNull();
    expect(handshakeRefusal(fresh, { mount: 'm1', epoch: MAX_FIRST_EPOCH + 1 }, 'KEY-1')?.code).toBe('MFS_MALFORMED');
  });
});
