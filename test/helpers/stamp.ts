import { randomUUID } from 'node:crypto';
import type { MutationInput } from '../../src/protocol/ops.js';

type Unstamped<T> = T extends unknown ? Omit<T, 'mount' | 'epoch' | 'seq'> : never;

/** Issues stamped mutations for one mount identity, as a mount would: seq 1, 2, 3 ... */
export class Stamper {
  seq = 0;
  constructor(readonly mount = `test-${randomUUID().slice(0, 8)}`, public epoch = 1) {}
  next(op: Unstamped<MutationInput>): MutationInput {
    return { ...op, mount: this.mount, epoch: this.epoch, seq: ++this.seq } as MutationInput;
  }
}
