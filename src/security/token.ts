import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Refusal } from '../refusal.js';
import { checkCredentialFile } from './private-paths.js';

/**
 * Bearer-token authentication. Tokens are compared through their SHA-256
 * digests with timingSafeEqual, so neither length nor content leaks by timing.
 * (Mutual TLS arrives with the transport-security work; the token stays as a
 * second factor.)
 */
export class TokenAuth {
  private readonly digest: Buffer;

  constructor(token: string) {
    if (token.length < 16) throw new Refusal('TOKEN_MISSING', 'token must be at least 16 characters');
    this.digest = sha256(token);
  }

  check(authorization: string | undefined): boolean {
    if (!authorization?.startsWith('Bearer ')) return false;
    return timingSafeEqual(sha256(authorization.slice('Bearer '.length)), this.digest);
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Read a token file (first line, trimmed). */
export function readTokenFile(file: string): string {
  checkCredentialFile(file, 'token file');
  const token = readFileSync(file, 'utf8').split('\n')[0]!.trim();
  if (!token) throw new Refusal('TOKEN_MISSING', `token file ${file} is empty`);
  return token;
}

/** Read a token file, creating it (mode 0600, 32 random bytes hex) when it does not exist. */
export function ensureTokenFile(file: string): { token: string; created: boolean } {
  if (existsSync(file)) return { token: readTokenFile(file), created: false };
  const token = randomBytes(32).toString('hex');
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, created: true };
}
