import Database from 'better-sqlite3';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { witnessOf } from '../../src/store/apply.js';
import { noSync } from '../../src/store/durable.js';
import { FdCache } from '../../src/store/fd-cache.js';
import { renameat2 } from '../../src/store/posix.js';
import { Tree } from '../../src/store/tree.js';
import type { Mutation } from '../../src/protocol/ops.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { Stamper } from '../helpers/stamp.js';
import { cleanupTmp } from '../helpers/tmp.js';

afterEach(async () => {
  await cleanupPeers();
  cleanupTmp();
});

async function ownedPeer() {
  const peer = await spawnPeer({ name: 'east' });
  const stamp = new Stamper();
  const client = peer.client();
  await client.handshake(stamp.mount, stamp.epoch);
  return { peer, stamp, client };
}

describe('the same operation sent twice is applied once', () => {
  it('a re-sent rename and mkdir are answered with their first result, not re-applied', async () => {
    const { peer, stamp, client } = await ownedPeer();
    writeFileSync(join(peer.dataDir, 'a'), 'A');
    const rename = stamp.next({ op: 'rename', from: 'a', to: 'b' });
    await client.call(rename);
    await client.call(rename); // a re-apply would fail with ENOENT
    expect(readFileSync(join(peer.dataDir, 'b'), 'utf8')).toBe('A');
    // the same request under a new seq is a new operation, and fails as it should
    await expect(client.call(stamp.next({ op: 'rename', from: 'a', to: 'b' }))).rejects.toMatchObject({ errno: 'ENOENT' });
    const mkdir = stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 });
    await client.call(mkdir);
    await client.call(mkdir); // a re-apply would fail with EEXIST
  });

  it('a different operation under a seq already used is refused as a conflict, not answered with the other outcome', async () => {
    const { stamp, client } = await ownedPeer();
    const mkdir = stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 });
    await client.call(mkdir);
    await expect(client.call({ ...mkdir, path: 'other' } as typeof mkdir)).rejects.toMatchObject({ code: 'MFS_SEQ_CONFLICT', errno: 'EIO' });
  });

  it('an error outcome is remembered too: the re-send does not apply the operation late', async () => {
    const { peer, stamp, client } = await ownedPeer();
    const unlink = stamp.next({ op: 'unlink', path: 'later' });
    await expect(client.call(unlink)).rejects.toMatchObject({ errno: 'ENOENT' });
    writeFileSync(join(peer.dataDir, 'later'), 'keep me');
    await expect(client.call(unlink)).rejects.toMatchObject({ errno: 'ENOENT' });
    expect(existsSync(join(peer.dataDir, 'later'))).toBe(true);
  });

  it('concurrent duplicates of one operation join a single application', async () => {
    const { peer, stamp, client } = await ownedPeer();
    writeFileSync(join(peer.dataDir, 'x'), 'X');
    const rename = stamp.next({ op: 'rename', from: 'x', to: 'y' });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => client.call(rename)));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill('fulfilled'));
    expect(readFileSync(join(peer.dataDir, 'y'), 'utf8')).toBe('X');
  });

  it('outcomes survive a restart of the peer', async () => {
    const { peer, stamp, client } = await ownedPeer();
    writeFileSync(join(peer.dataDir, 'a'), 'A');
    const rename = stamp.next({ op: 'rename', from: 'a', to: 'b' });
    await client.call(rename);
    const again = await peer.restart();
    await again.client().call(rename);
    expect(readFileSync(join(again.dataDir, 'b'), 'utf8')).toBe('A');
    const progress = await again.client().progress(stamp.mount);
    expect(progress).toMatchObject({ contiguousSeq: 1, maxSeq: 1 });
  });

  it('an operation in doubt after a crash (intent recorded, change applied, no outcome) is completed, not failed', async () => {
    const { peer, stamp, client } = await ownedPeer();
    writeFileSync(join(peer.dataDir, 'src'), 'S');
    await client.call(stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 }));
    await peer.stop();
    // Reproduce the state a crash leaves between "rename applied" and "outcome recorded".
    const rename = stamp.next({ op: 'rename', from: 'src', to: 'd/dst' });
    const db = new Database(join(peer.stateDir, 'peer.db'));
    db.prepare("INSERT INTO outcomes(mount, seq, epoch, op, subject, state, result, at_ms) VALUES (?, ?, ?, 'rename', ?, 'intent', NULL, 0)").run(stamp.mount, rename.seq, stamp.epoch, JSON.stringify({ op: 'rename', from: 'src', to: 'd/dst' }));
    db.close();
    renameSync(join(peer.dataDir, 'src'), join(peer.dataDir, 'd/dst'));
    const again = await peer.restart();
    // In doubt: counted in maxSeq, but not as applied (reconciliation must look at it).
    expect(await again.client().progress(stamp.mount)).toMatchObject({ contiguousSeq: 1, maxSeq: 2 });
    await again.client().call(rename); // without the intent this would be ENOENT
    expect(readFileSync(join(again.dataDir, 'd/dst'), 'utf8')).toBe('S');
    expect(await again.client().progress(stamp.mount)).toMatchObject({ contiguousSeq: 2, maxSeq: 2 });
  });

  // An exchange is its own inverse: after it both names exist, as before. Only the
  // witness kept with the intent (the inode numbers before) tells whether it happened.
  for (const appliedBeforeCrash of [true, false]) {
    it(`a RENAME_EXCHANGE in doubt after a crash is swapped exactly once (${appliedBeforeCrash ? 'it was applied' : 'it was not'})`, async () => {
      const { peer, stamp, client } = await ownedPeer();
      writeFileSync(join(peer.dataDir, 'a'), 'A');
      writeFileSync(join(peer.dataDir, 'b'), 'B');
      await client.call(stamp.next({ op: 'mkdir', path: 'd', mode: 0o755 }));
      await peer.stop();
      const exchange = stamp.next({ op: 'rename', from: 'a', to: 'b', exchange: true });
      // The intent as the peer records it: with the witness its own apply code takes.
      const witness = witnessOf({ tree: new Tree(peer.dataDir), fds: new FdCache(), sync: noSync }, { ...exchange, mount: stamp.mount, epoch: stamp.epoch } as Mutation);
      expect(witness).not.toBeNull();
      const db = new Database(join(peer.stateDir, 'peer.db'));
      db.prepare("INSERT INTO outcomes(mount, seq, epoch, op, subject, state, result, at_ms) VALUES (?, ?, ?, 'rename', ?, 'intent', ?, 0)").run(stamp.mount, exchange.seq, stamp.epoch, JSON.stringify({ op: 'rename', from: 'a', to: 'b', exchange: true }), witness);
      db.close();
      if (appliedBeforeCrash) renameat2(join(peer.dataDir, 'a'), join(peer.dataDir, 'b'), { exchange: true });
      const again = await peer.restart();
      // The witness is the peer's own: its history shows an intent without a result.
      expect((await again.client().history(stamp.mount, 1)).find((e) => e.seq === exchange.seq)).toMatchObject({ state: 'intent', result: null });
      await again.client().call(exchange);
      expect([readFileSync(join(again.dataDir, 'a'), 'utf8'), readFileSync(join(again.dataDir, 'b'), 'utf8')]).toEqual(['B', 'A']);
      await again.client().call(exchange); // answered from the outcome now recorded: not swapped back
      expect(readFileSync(join(again.dataDir, 'a'), 'utf8')).toBe('B');
      expect(await again.client().progress(stamp.mount)).toMatchObject({ contiguousSeq: 2, maxSeq: 2 });
    });
  }
});
