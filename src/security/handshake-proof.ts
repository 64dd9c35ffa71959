import { createPrivateKey, sign, verify, type X509Certificate } from 'node:crypto';

/**
 * The owner's signature on its handshake: "mount M may hold epochs up to E",
 * made with the mount's TLS key and carried unchanged down a chain of relays.
 * A relay passes a handshake on naming the owner's certificate (public: any
 * peer has seen it), so the naming proves nothing alone; the signature proves
 * the owner asked. A relay's key can then not take a peer, or pass on changes,
 * for an owner that never handshook through it (docs/SECURITY.md, roles).
 */

function signedText(mount: string, epoch: number): Buffer {
  return Buffer.from(`mirrorfs handshake v1\nmount ${mount}\nepoch ${epoch}\n`);
}

/** The proof as sent in `handshake.proof`: the epoch signed for and the signature, base64 JSON. */
export function signHandshake(mount: string, epoch: number, keyPem: string): string {
  const signature = sign('sha256', signedText(mount, epoch), createPrivateKey(keyPem)).toString('base64');
  return Buffer.from(JSON.stringify({ epoch, signature })).toString('base64');
}

/** Why `proof` does not show that the holder of `cert` let mount `mount` take `epoch` (null: it does). Valid for any epoch up to the one signed: a peer behind is stepped through them. */
export function handshakeProofRefusal(proof: string, mount: string, epoch: number, cert: X509Certificate): string | null {
  let p: { epoch?: unknown; signature?: unknown };
  try {
    p = JSON.parse(Buffer.from(proof, 'base64').toString('utf8')) as typeof p;
  } catch {
    return 'the handshake proof is not base64 JSON';
  }
  if (typeof p.epoch !== 'number' || typeof p.signature !== 'string') return 'the handshake proof lacks a field';
  if (p.epoch < epoch) return `the handshake proof is for epochs up to ${p.epoch}, not ${epoch}`;
  if (!verify('sha256', signedText(mount, p.epoch), cert.publicKey, Buffer.from(p.signature, 'base64'))) return `the handshake proof is not signed by certificate ${cert.fingerprint256} for mount ${mount}`;
  return null;
}
