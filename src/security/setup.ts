import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ensureIdentity, loadIdentity, type Identity } from './identity.js';
import { CLEARTEXT, type Transport } from './transport.js';
import { Trust } from './trust.js';
import { Refusal } from '../refusal.js';

/** The transport flags every command that talks to peers takes. */
export interface TransportFlags {
  insecureCleartext?: boolean;
  tlsIdentity: string;
  trust: string;
  /** The trust file was named (not a default): then it must exist even with a CA. */
  trustGiven?: boolean;
  trustCa?: string;
}

/** The help texts of those flags, the same for every command. */
export const TRANSPORT_HELP = {
  tlsIdentity: 'directory holding this node\'s TLS key and certificate (made by init)',
  trust: 'file of trusted certificate fingerprints, one per line with an optional name and roles=... (made by init; read again when it changes)',
  trustCa: 'PEM bundle of a CA: certificates it issued are trusted too (a server\'s must also name its host)',
  insecureCleartext: 'INSECURE: talk cleartext HTTP/2 (http://), without TLS or certificates; for tests on one machine only',
} as const;

/**
 * Build the transport from the flags: mutual TLS unless --insecure-cleartext.
 * Refuses (a clear error) a missing identity, and a trust that lets nobody in.
 */
export function transportFromFlags(flags: TransportFlags, initCommand: string): Transport {
  if (flags.insecureCleartext) return CLEARTEXT;
  const identity = loadIdentity(resolve(flags.tlsIdentity), initCommand);
  // With a CA, the trust file of pins is optional.
  const trustFile = flags.trustCa !== undefined && !flags.trustGiven && !existsSync(resolve(flags.trust)) ? undefined : resolve(flags.trust);
  const trust = new Trust(trustFile, flags.trustCa === undefined ? undefined : resolve(flags.trustCa));
  if (trust.size === 0 && trust.ca === undefined) {
    throw new Refusal('TRUST_INVALID', `trust file ${resolve(flags.trust)} lists no fingerprint, so no other node could connect: add the fingerprints that \`mirrorfs init\` and \`mirrorfs-peer init\` print on each node (docs/SECURITY.md)`);
  }
  return { kind: 'tls', identity, trust };
}

const TRUST_TEMPLATE = `# mirrorfs trust file: the nodes this one lets in and talks to.
# One SHA-256 certificate fingerprint per line, then optionally the node's name and
# what it may do: roles=mount,standby,relay,peer,reader (docs/SECURITY.md, roles).
# A line without roles= allows every role, as before roles existed: name them.
# \`mirrorfs init\` (mounts, standbys) and \`mirrorfs-peer init\` (peers, relays) print the lines.
# Every node of a deployment can share the same file. Read again whenever it changes.
# Example:
# 54:08:4A:28:20:48:7E:BD:64:A3:32:46:4E:0C:D5:D1:8B:B8:D9:FE:FD:A0:26:F8:28:9F:15:FB:4D:C4:79:8D east roles=peer,relay
`;

/**
 * init: create this node's identity (or keep the one there) and a commented
 * trust file (or keep the one there); returns what to tell the operator.
 */
export async function initNode(identityDir: string, trustFile: string, commonName: string): Promise<{ identity: Identity; created: boolean; trustCreated: boolean }> {
  const { identity, created } = await ensureIdentity(resolve(identityDir), commonName);
  let trustCreated = false;
  if (!existsSync(trustFile)) {
    writeFileSync(trustFile, TRUST_TEMPLATE, { mode: 0o644, flag: 'wx' });
    trustCreated = true;
  }
  return { identity, created, trustCreated };
}

/** What init prints: the fingerprint to give to every other node, and where things are. */
export function describeInit(who: string, roles: string, r: { identity: Identity; created: boolean; trustCreated: boolean }, trustFile: string): string {
  return [
    `${r.created ? 'created' : 'kept the existing'} TLS identity in ${r.identity.dir}`,
    `fingerprint: ${r.identity.fingerprint}`,
    `  add this line to the trust file of every node that talks to this one (a filer that also forwards, --forward-to, needs roles=peer,relay):`,
    `  ${r.identity.fingerprint} ${who} roles=${roles}`,
    `trust file: ${trustFile}${r.trustCreated ? ' (created, empty: add the fingerprints of the other nodes)' : ''}`,
    '',
  ].join('\n');
}
