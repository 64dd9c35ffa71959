import { describe, expect, it } from 'vitest';
import { ActivityLog, type LoggedPeer } from '../../src/mount/recovery/activity-log.js';

/**
 * The activity log (src/mount/recovery/activity-log.ts): which names a peer
 * whose machine went down may hold wrongly. It must never answer fewer names
 * than were changed after the durable point it is asked about, and must say
 * "not known" rather than guess once it no longer reaches back that far.
 */

function peers(...list: Array<[string, number | null]>): LoggedPeer[] {
  return list.map(([name, durableThrough]) => ({ name, durableThrough }));
}

describe('ActivityLog', () => {
  it('names every name changed after a durable point, and nothing changed at or before it', () => {
    const view = peers(['east', null], ['west', null]);
    const log = new ActivityLog(0, () => view);
    log.note(1, ['a']);
    log.note(2, ['b', 'c']);
    log.note(3, ['d']);
    expect(log.suspectNames('east', 1)?.sort()).toEqual(['b', 'c', 'd']);
    expect(log.suspectNames('east', 3)).toEqual([]);
    expect(log.suspectNames('east', 0)?.sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('uses the lower of the durable point asked about and the one the peer reported before', () => {
    const view = peers(['east', 1], ['west', 1]);
    const log = new ActivityLog(0, () => view);
    log.note(1, ['a']);
    log.note(2, ['b']);
    log.note(3, ['c']);
    // After its restart the peer's record may say less, or (recorded but not reported) more.
    expect(log.suspectNames('east', 2)?.sort()).toEqual(['b', 'c']);
  });

  it('drops only what every peer has durable, in step or not: a peer behind keeps every name changed since its durable point, also those it was brought later', () => {
    let view = peers(['east', 0], ['west', 0]);
    const log = new ActivityLog(0, () => view, 1000);
    for (let s = 1; s <= 10; s++) log.note(s, [`n${s}`]);
    view = peers(['east', 4], ['west', 8]);
    log.trim();
    expect(log.size).toBe(6); // seqs 5..10: east is durable only through 4
    // east falls behind (a timeout): catch-up brings it changes it applies without flushing.
    for (let s = 11; s <= 20; s++) log.note(s, [`n${s}`]);
    view = peers(['east', 4], ['west', 20]);
    log.trim();
    expect(log.size).toBe(16);
    // Its machine goes down: every name changed after its durable point, the later ones too.
    expect(log.suspectNames('east', 4)?.length).toBe(16);
    expect(log.suspectNames('east', 4)).toContain('n20');
    // Durable everywhere: dropped.
    view = peers(['east', 20], ['west', 20]);
    log.trim();
    expect(log.size).toBe(0);
    log.note(21, ['x']);
    expect(log.suspectNames('east', 20)).toEqual(['x']);
  });

  it('says "not known" for a point before the mount started or before entries dropped over its bound', () => {
    const view = peers(['east', null], ['west', null]);
    const log = new ActivityLog(100, () => view, 5);
    for (let s = 101; s <= 105; s++) log.note(s, [`n${s}`]);
    expect(log.suspectNames('east', 99)).toBeNull(); // seq 100 and before: another run of the mount
    expect(log.suspectNames('east', 100)?.length).toBe(5);
    log.note(106, ['n106']); // over the bound: seq 101 is dropped, not durable anywhere
    log.trim();
    expect(log.size).toBe(5);
    expect(log.suspectNames('east', 100)).toBeNull();
    expect(log.suspectNames('east', 101)?.sort()).toEqual(['n102', 'n103', 'n104', 'n105', 'n106']);
  });

  it('keeps everything while some peer has not reported a durable point', () => {
    let view = peers(['east', null], ['west', 51]);
    const log = new ActivityLog(50, () => view);
    log.note(51, ['a']);
    log.trim();
    log.note(52, ['b']);
    expect(log.suspectNames('west', 51)).toEqual(['b']);
    view = peers(['east', 52], ['west', 52]);
    log.trim();
    expect(log.size).toBe(0);
  });
});
