import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import { z } from 'zod';
import { readTokenFile } from '../../security/token.js';
import { checkScheme, schemeOf, type Transport } from '../../security/transport.js';
import { Refusal } from '../../refusal.js';

/**
 * Which peers a mount mirrors to, and how to reach them. From `--peers`
 * (names resolved as host names on the default port, or name=URL) and an
 * optional JSON config file that can give each peer its URL and token.
 */

export const DEFAULT_PEER_PORT = 7070;
export const DEFAULT_CONFIG_FILE = '/etc/mirrorfs/config.json';
/** Where `mirrorfs init` puts a mount's TLS identity and trust file. */
export const DEFAULT_TLS_IDENTITY_DIR = '/etc/mirrorfs/tls';
export const DEFAULT_TRUST_FILE = '/etc/mirrorfs/trust';

export interface PeerSpec {
  name: string;
  /** One URL, or several routes to the same peer separated by '|' (tried in order, switched on failure). */
  url: string;
  token: string;
  /** Mutual TLS or (asked for) cleartext: the same for every peer of a mount. */
  transport: Transport;
}

const peerEntry = z.object({
  url: z.string().url().optional(),
  /** Diverse routes to the same peer (para. 15): used in order, switched when one fails. */
  routes: z.array(z.string().url()).min(1).optional(),
  token: z.string().min(16).optional(),
  tokenFile: z.string().optional(),
}).strict();

const configSchema = z.object({
  /** Per-peer settings, by name. */
  peers: z.record(z.string(), peerEntry).default({}),
  /** Token file used for peers that do not name their own. */
  tokenFile: z.string().optional(),
  /** This node's TLS identity directory (default /etc/mirrorfs/tls); --tls-identity overrides. */
  tlsIdentity: z.string().optional(),
  /** The trust file of fingerprints (default /etc/mirrorfs/trust); --trust overrides. */
  trust: z.string().optional(),
  /** A CA bundle whose certificates are trusted too; --trust-ca overrides. */
  trustCa: z.string().optional(),
}).strict();

export type ConfigFile = z.infer<typeof configSchema>;

export function loadConfig(file: string | undefined): ConfigFile {
  const path = file ?? DEFAULT_CONFIG_FILE;
  if (!existsSync(path)) {
    if (file) throw new Refusal('CONFIG_MISSING', `config file ${path} does not exist`);
    return configSchema.parse({});
  }
  // JSON with comments and trailing commas (jsonc-parser), so the file can explain itself (examples/config.jsonc).
  const text = readFileSync(path, 'utf8');
  const errors: ParseError[] = [];
  const raw: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const e = errors[0]!;
    const line = text.slice(0, e.offset).split('\n').length;
    throw new Refusal('CONFIG_INVALID', `config file ${path} is not valid JSON (comments allowed): ${printParseErrorCode(e.error)} at line ${line}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Refusal('CONFIG_INVALID', `config file ${path}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Resolve `--peers east,west` or `--peers east=http://10.0.0.2:7070,west` into
 * peer specs. A bare name takes its URL from the config file, or else
 * https://NAME:7070 (http:// with --insecure-cleartext). The token comes from
 * the peer's config entry, else the config's tokenFile, else --token-file.
 */
export function resolvePeers(peersArg: string, config: ConfigFile, transport: Transport, tokenFileArg?: string): PeerSpec[] {
  const items = peersArg.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new Refusal('PEERS_INVALID', '--peers: name at least one peer (for example --peers east,west)');
  const specs = items.map((item) => {
    const eq = item.indexOf('=');
    const name = eq === -1 ? item : item.slice(0, eq);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Refusal('PEERS_INVALID', `--peers: ${JSON.stringify(name)} is not a valid peer name`);
    const entry = config.peers[name] ?? {};
    const url = eq === -1 ? (entry.routes?.join('|') ?? entry.url ?? `${schemeOf(transport)}://${name}:${DEFAULT_PEER_PORT}`) : item.slice(eq + 1);
    const routes = url.split('|').map((u) => {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new Refusal('PEERS_INVALID', `--peers: peer ${name}: ${JSON.stringify(u)} is not a URL (expected https://HOST:PORT, or several joined by |)`);
      }
      checkScheme(parsed.origin, transport, `--peers: peer ${name}`);
      return parsed.origin;
    });
    const tokenFile = entry.tokenFile ?? config.tokenFile ?? tokenFileArg;
    const token = entry.token ?? (tokenFile ? readTokenFile(resolve(tokenFile)) : undefined);
    if (!token) throw new Refusal('TOKEN_MISSING', `no token for peer ${name}: pass --token-file, or set peers.${name}.tokenFile in the config file`);
    return { name, url: routes.join('|'), token, transport };
  });
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Refusal('PEERS_INVALID', `--peers: ${s.name} is named twice`);
    names.add(s.name);
  }
  return specs;
}
