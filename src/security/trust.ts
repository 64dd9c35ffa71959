import { existsSync, readFileSync, statSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { normalizeFingerprint } from './identity.js';
import { Refusal } from '../refusal.js';
import { checkCredentialFile } from './private-paths.js';

/**
 * Whom a node lets in (as a server) and talks to (as a client): certificates
 * pinned by fingerprint in a trust file, and/or any certificate issued by a CA
 * given in a PEM bundle. The trust file is one fingerprint per line, optionally
 * followed by a label (the node's name), with # comments. It is read again
 * whenever it changes on disk, at the next connection, so adding a key for a
 * rotation needs no restart (docs/SECURITY.md).
 */
export interface TrustVerdict {
  trusted: boolean;
  /** The fingerprint the other side presented, or null when it presented no certificate. */
  fingerprint: string | null;
  /** Why it was trusted (its label, or "CA") or refused, for logs and errors. */
  why: string;
}

/** How often, at most, the trust file is looked at again (a stat) while requests arrive. */
const RECHECK_MS = 500;

export class Trust {
  private pins = new Map<string, string>();
  /** What the file looked like when last read: any change (contents, a copy with its mtime kept, a rename over it) changes one of these. */
  private loadedStamp = '';
  private checkedAt = -Infinity;
  /** Bumped whenever the pins change, so verdicts judged under older pins are judged again. */
  generation = 0;
  readonly ca: Buffer | undefined;

  constructor(readonly file: string | undefined, readonly caFile?: string) {
    if (file === undefined && caFile === undefined) throw new Refusal('TRUST_INVALID', 'no trust configured: give a trust file of fingerprints, or a CA bundle');
    if (caFile !== undefined) {
      if (!existsSync(caFile)) throw new Refusal('CA_BUNDLE_INVALID', `CA bundle ${caFile} does not exist`);
      this.ca = readFileSync(caFile);
      if (!this.ca.includes('-----BEGIN CERTIFICATE-----')) throw new Refusal('CA_BUNDLE_INVALID', `CA bundle ${caFile} holds no PEM certificate`);
    }
    if (file !== undefined) {
      if (!existsSync(file)) throw new Refusal('TRUST_INVALID', `trust file ${file} does not exist: list there, one per line, the fingerprints of the nodes allowed to connect (\`mirrorfs init\` and \`mirrorfs-peer init\` print them)`);
      this.reload(true);
    }
  }

  /** Number of pinned fingerprints (as of the last read). */
  get size(): number {
    return this.pins.size;
  }

  /** Judge the certificate the other side of a finished TLS handshake presented. */
  judge(socket: TLSSocket): TrustVerdict {
    const fingerprint = presentedFingerprint(socket);
    if (fingerprint === null) return { trusted: false, fingerprint, why: 'no certificate presented' };
    // `authorized` also holds for a chain to the system's public roots when no CA is configured: count it only with our own CA.
    if (this.ca !== undefined && socket.authorized) return { trusted: true, fingerprint, why: 'issued by the trusted CA' };
    this.reload(true);
    const label = this.pins.get(fingerprint);
    if (label !== undefined) return { trusted: true, fingerprint, why: label || 'pinned' };
    const caNote = this.ca !== undefined ? ` and not verified by the CA (${String(socket.authorizationError ?? 'no chain')})` : '';
    return { trusted: false, fingerprint, why: `fingerprint not in the trust file${caNote}` };
  }

  /**
   * The current generation, after looking at the file again if it is due (at
   * most every RECHECK_MS): a server re-judges open connections when it moved,
   * so removing a fingerprint cuts off a connected node too.
   */
  currentGeneration(): number {
    this.reload(false);
    return this.generation;
  }

  /** Read the trust file again if it changed (a bad edit throws: refuse rather than guess). */
  private reload(force: boolean): void {
    if (this.file === undefined) return;
    const now = performance.now();
    if (!force && now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    const st = statSync(this.file);
    // ctime cannot be set by hand, and ino changes when a new file is renamed over the old one.
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (stamp === this.loadedStamp) return;
    checkCredentialFile(this.file, 'trust file');
    this.pins = parseTrustFile(readFileSync(this.file, 'utf8'), this.file);
    this.loadedStamp = stamp;
    this.generation++;
  }
}

/** The SHA-256 fingerprint of the certificate the other side presented, or null. */
export function presentedFingerprint(socket: TLSSocket): string | null {
  const cert = socket.getPeerCertificate();
  return cert && typeof cert.fingerprint256 === 'string' && cert.fingerprint256 ? cert.fingerprint256 : null;
}

/** Parse a trust file: `FINGERPRINT [label]` per line, # comments and blank lines ignored. */
export function parseTrustFile(text: string, file: string): Map<string, string> {
  const pins = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    // openssl prints "SHA256 Fingerprint=AB:CD:..."; that prefix is accepted as written.
    const line = raw.replace(/#.*/, '').trim().replace(/^sha256 fingerprint=/i, '');
    if (!line) return;
    const [first, ...rest] = line.split(/\s+/);
    const fp = normalizeFingerprint(first!);
    if (fp === null) throw new Refusal('TRUST_INVALID', `trust file ${file} line ${i + 1}: ${JSON.stringify(first)} is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
    pins.set(fp, rest.join(' '));
  });
  return pins;
}
