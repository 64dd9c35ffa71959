import type { Logger } from '../../log.js';
import { MirrorError, isFenced } from '../../protocol/errors.js';
import type { Member } from '../peers/member.js';

/**
 * The primary's heartbeat: every second it renews its lease on every peer
 * (control op `lease`). A standby (`mirrorfs standby`) reads the lease's age
 * from the peers' status and takes over only once every peer has not heard
 * from the owner for its grace period (docs/TAKEOVER.md). The age is measured
 * by each peer's own clock, so clock skew between machines does not matter.
 * A renewal that is refused as fenced means another mount owns the peers now.
 * Each answer says where that copy stands (applied and durable points), which
 * `mirrorfs status` shows.
 */
export const LEASE_RENEW_MS = 1000;

export class LeaseKeeper {
  private timer: NodeJS.Timeout | null = null;
  /** Told when a peer's answer says it is unclean (it restarted after its machine went down). */
  onUnclean: (m: Member) => void = () => undefined;

  constructor(
    private readonly mountId: string,
    private readonly epoch: number,
    private readonly members: readonly Member[],
    public onFenced: (m: Member, err: MirrorError) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.renew(), LEASE_RENEW_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private renew(): void {
    for (const m of this.members) {
      const sentAt = performance.now();
      m.client.lease(this.mountId, this.epoch, LEASE_RENEW_MS).then((answer) => {
        // An answer to a renewal sent before the peer's last repair finished may still say unclean.
        const unclean = answer.unclean === true && sentAt > m.repairedAt;
        m.noteDurability(answer.durability ?? null, unclean);
        if (unclean) this.onUnclean(m);
      }).catch((err: unknown) => {
        if (isFenced(err)) this.onFenced(m, err);
        else this.log.debug({ peer: m.name, err: (err as Error).message }, 'lease renewal failed (the peer is down or slow)');
      });
    }
  }
}
