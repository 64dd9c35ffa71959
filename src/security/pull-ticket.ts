import { X509Certificate, createPrivateKey, sign, verify } from 'node:crypto';

/**
 * A pull ticket: the owner's word, signed with its TLS key, that one peer may
 * read another for it (a full resync peer to peer, docs/RECOVERY.md). It
 * replaces handing the source's token to the target: the target reads with its
 * own certificate (role `peer`), names the owner's certificate as its origin,
 * and shows this ticket; the source checks the signature against that
 * certificate, and that the certificate, mount and epoch are its own owner's
 * now. A takeover or a remount (a new epoch) voids every ticket issued before.
 */
export interface PullTicket {
  /** The source's peer id: a ticket for one source opens no other. */
  source: string;
  mount: string;
  epoch: number;
  /** The target's certificate (SHA-256 fingerprint): only its sessions may use the ticket. */
  target: string;
}

function signedText(t: PullTicket): Buffer {
  return Buffer.from(`mirrorfs pull ticket v1\nsource ${t.source}\nmount ${t.mount}\nepoch ${t.epoch}\ntarget ${t.target}\n`);
}

/** The ticket as a header value: the fields and the signature, base64 JSON. */
export function issuePullTicket(t: PullTicket, keyPem: string): string {
  const signature = sign('sha256', signedText(t), createPrivateKey(keyPem)).toString('base64');
  return Buffer.from(JSON.stringify({ ...t, signature })).toString('base64');
}

/** Why a ticket does not let `presenter` read for `owner` (null: it does). */
export function ticketRefusal(header: string, owner: { cert: X509Certificate; mount: string | null; epoch: number; peerId: string }, presenter: string | null): string | null {
  let t: PullTicket & { signature: string };
  try {
    t = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PullTicket & { signature: string };
  } catch {
    return 'the pull ticket is not base64 JSON';
  }
  if (typeof t.source !== 'string' || typeof t.mount !== 'string' || typeof t.epoch !== 'number' || typeof t.target !== 'string' || typeof t.signature !== 'string') return 'the pull ticket lacks a field';
  if (t.source !== owner.peerId) return `the pull ticket is for peer ${t.source}, not this one (${owner.peerId})`;
  if (t.mount !== owner.mount || t.epoch !== owner.epoch) return `the pull ticket is from mount ${t.mount} at epoch ${t.epoch}; this peer is owned by ${owner.mount} at epoch ${owner.epoch}`;
  if (presenter === null || t.target !== presenter) return `the pull ticket is for certificate ${t.target}, not ${presenter}`;
  if (!verify('sha256', signedText(t), owner.cert.publicKey, Buffer.from(t.signature, 'base64'))) return 'the pull ticket\'s signature is not the owner\'s';
  return null;
}
