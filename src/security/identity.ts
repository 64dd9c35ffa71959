import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { Refusal } from '../refusal.js';
import { checkCredentialFile } from './private-paths.js';

/**
 * A node's TLS identity: a private key and a self-signed certificate in a
 * directory of its own (key.pem mode 0600, cert.pem). Other nodes trust it by
 * the certificate's SHA-256 fingerprint (docs/SECURITY.md), so the certificate
 * needs no CA and no host name; it is made by the selfsigned library (ASN.1 by
 * @peculiar/x509, not by hand).
 */
export interface Identity {
  dir: string;
  key: string;
  cert: string;
  /** SHA-256 of the certificate, upper-case hex in colon-separated pairs (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
}

export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';
/** Pinned certificates are trusted by fingerprint, not by date; rotation is a choice (docs/SECURITY.md), not an expiry. */
const VALIDITY_YEARS = 30;

/** Load the identity in dir; a clear error says how to create it when it is missing. */
export function loadIdentity(dir: string, howToCreate: string): Identity {
  const keyFile = join(dir, KEY_FILE);
  const certFile = join(dir, CERT_FILE);
  const hasKey = existsSync(keyFile);
  const hasCert = existsSync(certFile);
  if (!hasKey && !hasCert) throw new Refusal('TLS_IDENTITY_MISSING', `no TLS identity in ${dir} (${KEY_FILE} and ${CERT_FILE}): create one with \`${howToCreate}\``);
  if (!hasKey || !hasCert) throw new Refusal('TLS_IDENTITY_INVALID', `${dir} holds ${hasKey ? KEY_FILE : CERT_FILE} but not ${hasKey ? CERT_FILE : KEY_FILE}: remove the directory and run init again, or put the missing file back`);
  checkCredentialFile(keyFile, 'TLS key');
  const key = readFileSync(keyFile, 'utf8');
  const cert = readFileSync(certFile, 'utf8');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Refusal('TLS_IDENTITY_INVALID', `${certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new Refusal('TLS_IDENTITY_INVALID', `${keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (!matches) throw new Refusal('TLS_IDENTITY_INVALID', `${keyFile} does not belong to ${certFile} (a key and a certificate from different identities): restore the pair, or make a new identity in a new directory`);
  return { dir, key, cert, fingerprint: x509.fingerprint256 };
}

/**
 * Create an identity in dir (an EC P-256 key and a certificate valid for
 * server and client authentication), or load the one already there: init is
 * idempotent and never replaces a key that others may already trust.
 */
export async function ensureIdentity(dir: string, commonName: string): Promise<{ identity: Identity; created: boolean }> {
  if (existsSync(join(dir, KEY_FILE)) || existsSync(join(dir, CERT_FILE))) {
    return { identity: loadIdentity(dir, 'init'), created: false };
  }
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: commonName.slice(0, 64) || 'mirrorfs' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + VALIDITY_YEARS * 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // 'wx': two inits racing must not leave a key that does not match its certificate.
  writeFileSync(join(dir, KEY_FILE), pems.private, { mode: 0o600, flag: 'wx' });
  writeFileSync(join(dir, CERT_FILE), pems.cert, { mode: 0o644, flag: 'wx' });
  return { identity: loadIdentity(dir, 'init'), created: true };
}

export function fingerprintOf(certPem: string | Buffer): string {
  return new X509Certificate(certPem).fingerprint256;
}

/**
 * A fingerprint as an operator may write it (colons or not, any case, an
 * optional "sha256:" or "SHA256 Fingerprint=" prefix) in the one form used for
 * comparison; null when it is not a SHA-256 fingerprint.
 */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.trim().replace(/^(sha256:|sha256 fingerprint=)/i, '').replace(/:/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return null;
  return hex.toUpperCase().match(/../g)!.join(':');
}
