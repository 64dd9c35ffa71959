import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { normalizeFingerprint } from './identity.js';
import { Refusal } from '../refusal.js';
import { checkCredentialFile } from './private-paths.js';
import { ALL_ROLES, parseRoles, type Roles } from './roles.js';

/**
 * Whom a node lets in (as a server) and talks to (as a client): certificates
 * pinned by fingerprint in a trust file, and/or any certificate issued by a CA
 * given in a PEM bundle. The trust file is one fingerprint per line, optionally
 * followed by a label (the node's name) and its roles (`roles=mount,standby`,
 * roles.ts), with # comments. It is read again whenever it changes on disk, at
 * the next connection, so adding a key for a rotation needs no restart
 * (docs/SECURITY.md). A CA-issued certificate names its roles in its subject's
 * OU (`OU=mirrorfs:mount`, one per role).
 */
export interface TrustVerdict {
  trusted: boolean;
  /** The fingerprint the other side presented, or null when it presented no certificate. */
  fingerprint: string | null;
  /** Why it was trusted (its label, or "CA") or refused, for logs and errors. */
  why: string;
  /** What it may do (empty when not trusted); every role when its trust line or certificate names none. */
  roles: Roles;
  /** True when those roles are every role only because none was named (the format before roles). */
  rolesUnnamed?: boolean;
}

/** One line of a trust file. */
export interface Pin {
  label: string;
  roles: Roles;
  /** No `roles=` on the line: every role, as before roles existed. */
  rolesUnnamed: boolean;
}

/** How often, at most, the trust file is looked at again (a stat) while requests arrive. */
const RECHECK_MS = 500;

export class Trust {
  private pins = new Map<string, Pin>();
  private caCerts: X509Certificate[] = [];
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
      this.caCerts = splitPem(this.ca.toString('utf8')).map((pem) => new X509Certificate(pem));
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
    const cert = socket.getPeerCertificate();
    const fingerprint = cert && typeof cert.fingerprint256 === 'string' && cert.fingerprint256 ? cert.fingerprint256 : null;
    if (fingerprint === null) return { trusted: false, fingerprint, why: 'no certificate presented', roles: NO_ROLES };
    // `authorized` also holds for a chain to the system's public roots when no CA is configured: count it only with our own CA.
    const byCa = this.ca !== undefined && socket.authorized;
    return this.judgeFingerprint(fingerprint, byCa, () => new X509Certificate(cert.raw), String(socket.authorizationError ?? 'no chain'));
  }

  /**
   * Judge a certificate another node names as the one it acts for (a relay's
   * or a pulling peer's `mirrorfs-origin`): pinned here, or issued by this
   * node's CA (directly: no intermediates) and valid now.
   */
  judgeCertificate(der: Buffer): TrustVerdict {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(der);
    } catch (err) {
      return { trusted: false, fingerprint: null, why: `not a certificate (${(err as Error).message})`, roles: NO_ROLES };
    }
    const now = Date.now();
    const issued = this.caCerts.some((ca) => x509.checkIssued(ca) && x509.verify(ca.publicKey));
    const current = Date.parse(x509.validFrom) <= now && now <= Date.parse(x509.validTo);
    return this.judgeFingerprint(x509.fingerprint256, issued && current, () => x509, issued ? 'expired or not yet valid' : 'not issued by the trusted CA');
  }

  private judgeFingerprint(fingerprint: string, byCa: boolean, x509: () => X509Certificate, caWhy: string): TrustVerdict {
    this.reload(true);
    // A pin names the roles even for a CA-issued certificate: the trust file is the finer word.
    const pin = this.pins.get(fingerprint);
    if (pin !== undefined) return { trusted: true, fingerprint, why: pin.label || 'pinned', roles: pin.roles, rolesUnnamed: pin.rolesUnnamed };
    if (byCa) {
      let roles: Roles | null;
      try {
        roles = certificateRoles(x509());
      } catch (err) {
        return { trusted: false, fingerprint, why: `issued by the trusted CA, but ${(err as Error).message}`, roles: NO_ROLES };
      }
      return { trusted: true, fingerprint, why: 'issued by the trusted CA', roles: roles ?? ALL_ROLES, rolesUnnamed: roles === null };
    }
    const caNote = this.ca !== undefined ? ` and not verified by the CA (${caWhy})` : '';
    return { trusted: false, fingerprint, why: `fingerprint not in the trust file${caNote}`, roles: NO_ROLES };
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

/** Parse a trust file: `FINGERPRINT [label] [roles=a,b]` per line, # comments and blank lines ignored. */
export function parseTrustFile(text: string, file: string): Map<string, Pin> {
  const pins = new Map<string, Pin>();
  text.split('\n').forEach((raw, i) => {
    // openssl prints "SHA256 Fingerprint=AB:CD:..."; that prefix is accepted as written.
    const line = raw.replace(/#.*/, '').trim().replace(/^sha256 fingerprint=/i, '');
    if (!line) return;
    const [first, ...rest] = line.split(/\s+/);
    const fp = normalizeFingerprint(first!);
    if (fp === null) throw new Refusal('TRUST_INVALID', `trust file ${file} line ${i + 1}: ${JSON.stringify(first)} is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
    const roleWords = rest.filter((w) => /^roles=/i.test(w));
    if (roleWords.length > 1) throw new Refusal('TRUST_INVALID', `trust file ${file} line ${i + 1}: roles= given twice`);
    const label = rest.filter((w) => !/^roles=/i.test(w)).join(' ');
    const roles = roleWords.length === 1 ? parseRoles(roleWords[0]!.slice('roles='.length), `trust file ${file} line ${i + 1}`) : null;
    pins.set(fp, { label, roles: roles ?? ALL_ROLES, rolesUnnamed: roles === null });
  });
  return pins;
}

const NO_ROLES: Roles = new Set();

/** Roles a CA-issued certificate names in its subject (`OU=mirrorfs:mount`, one OU per role), or null when it names none. */
export function certificateRoles(x509: X509Certificate): Roles | null {
  const named = x509.subject.split('\n').filter((l) => l.startsWith('OU=')).map((l) => l.slice(3)).filter((ou) => ou.startsWith('mirrorfs:'));
  if (named.length === 0) return null;
  return parseRoles(named.map((ou) => ou.slice('mirrorfs:'.length)).join(','), `certificate ${x509.fingerprint256} OU`);
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
