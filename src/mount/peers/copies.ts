/** The copies the mount repairs and compares: its peers and its local copy. */
import { clientCopy } from '../../client/remote-copy.js';
import { storeCopy, type CopyHandle } from '../../store/copy-tree.js';
import type { LocalCopy } from './local-copy.js';
import type { Member } from './member.js';

export function peerCopy(member: Member, mountId: string, epoch: number): CopyHandle {
  return clientCopy(member.client, { mount: mountId, epoch }, () => member.inStep);
}

export function localCopyHandle(local: LocalCopy): CopyHandle {
  return storeCopy('local copy', local.context, { usable: () => local.active });
}
