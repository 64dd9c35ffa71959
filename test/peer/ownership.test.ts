import { describe, expect, it } from 'vitest';
import { handshakeRefusal, ownershipRefusal } from '../../src/peer/ownership.js';

/** The peer's ownership rules, as pure functions of who owns it now (the wire tests cover them through a peer). */

const owned = { epoch: 5, owner: 'm1', ownerSince: '2026-01-01T00:00:00.000Z' };

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
  it('takes the same or a newer epoch, and a first owner', () => {
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 5 })).toBeNull();
    expect(handshakeRefusal(owned, { mount: 'm2', epoch: 6 })).toBeNull();
    expect(handshakeRefusal({ epoch: 0, owner: null, ownerSince: null }, { mount: 'm2', epoch: 1 })).toBeNull();
  });

  it('fences an older epoch and refuses another mount at the same one', () => {
    expect(handshakeRefusal(owned, { mount: 'm1', epoch: 4 })?.code).toBe('MFS_FENCED');
    expect(handshakeRefusal(owned, { mount: 'm2', epoch: 5 })?.code).toBe('MFS_NOT_OWNER');
  });
});
