import { Refusal } from '../refusal.js';

/**
 * What a trusted certificate may do at a peer (docs/SECURITY.md, "Roles").
 * Being trusted says who a node is; its roles say what it may ask for:
 * - `mount`: own the peer (handshake, leases), change it, read it;
 * - `standby`: the same, for the backup site that takes over (docs/TAKEOVER.md);
 * - `relay`: pass on the changes and handshakes of an owner, and say on whose
 *   behalf it asks (the next hop judges that certificate itself);
 * - `peer`: read another peer on behalf of the owner that asked for it (a pull),
 *   naming that owner, who must be trusted here too;
 * - `reader`: read the tree and the status, change nothing (monitoring, audits).
 */
export const ROLES = ['mount', 'standby', 'relay', 'peer', 'reader'] as const;
export type Role = (typeof ROLES)[number];
export type Roles = ReadonlySet<Role>;

/** Every role: a trust line that names none (the format before roles), and cleartext, where nothing is judged. */
export const ALL_ROLES: Roles = new Set(ROLES);

/** Roles that may own a peer: take it (a handshake, a takeover), renew its lease, change it. */
export const OWNER_ROLES: readonly Role[] = ['mount', 'standby'];
/** Roles that may read the tree (files, listings, manifests) for themselves. */
export const READER_ROLES: readonly Role[] = ['mount', 'standby', 'reader'];
export function hasAny(roles: Roles, wanted: readonly Role[]): boolean {
  return wanted.some((r) => roles.has(r));
}

/** `mount,standby` as written in a trust file or a certificate; refuses a name that is not a role. */
export function parseRoles(text: string, where: string): Set<Role> {
  const roles = new Set<Role>();
  for (const name of text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (!(ROLES as readonly string[]).includes(name)) throw new Refusal('TRUST_INVALID', `${where}: ${JSON.stringify(name)} is not a role (roles: ${ROLES.join(', ')})`);
    roles.add(name as Role);
  }
  if (roles.size === 0) throw new Refusal('TRUST_INVALID', `${where}: roles= names no role (roles: ${ROLES.join(', ')})`);
  return roles;
}

export function describeRoles(roles: Roles): string {
  return roles.size === ROLES.length ? 'every role' : [...roles].join(',');
}
