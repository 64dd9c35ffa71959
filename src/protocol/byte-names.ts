import { isUtf8 } from 'node:buffer';
import { dirname } from 'node:path';
import { MirrorError } from './errors.js';

/**
 * Names are bytes. A Linux name is any bytes but "/" and NUL, and need not be
 * UTF-8 (an archive from a Latin-1 system); JSON and JavaScript strings carry
 * text. The wire therefore carries a name as text by the rule Python calls
 * "surrogateescape" (PEP 383): the bytes decoded as UTF-8 where they are valid
 * UTF-8, and each byte that is not as a lone surrogate U+DC80..U+DCFF (0x80..0xFF;
 * bytes below 0x80 are always valid). Valid UTF-8 never encodes a surrogate, so
 * the mapping is one to one: every byte string has exactly one wire form (its
 * "canonical" form), and a name that is valid UTF-8 (nearly all) is carried
 * exactly as before. JSON.stringify escapes lone surrogates ("\udce9"), so wire
 * forms survive JSON, SQLite TEXT holding JSON, and the frame header unchanged.
 *
 * Used at the three edges where names meet bytes: the FUSE binding (which hands
 * over names as latin1 strings, one character per byte: fuse-names.ts), a
 * peer's system calls (fsPath), and names a peer reads back from its disk
 * (readdir, readlink, listxattr: wireFromBytes).
 */

const FIRST_ESCAPE = 0xdc80;
const LAST_ESCAPE = 0xdcff;
/** A lone surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** True when `text` holds a lone surrogate: a wire form with escaped bytes (or, if not canonical, malformed). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** The wire form of a name's bytes (see above). */
export function wireFromBytes(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const length = validSequenceAt(buf, i);
    if (length === 0) {
      out += String.fromCharCode(FIRST_ESCAPE - 0x80 + buf[i]!);
      i += 1;
    } else {
      out += buf.toString('utf8', i, i + length);
      i += length;
    }
  }
  return out;
}

/**
 * The length of the well-formed UTF-8 sequence at `i` (1-4), or 0 when the byte
 * there does not start one (Unicode's table of well-formed byte sequences:
 * no overlong forms, no surrogates, nothing above U+10FFFF).
 */
function validSequenceAt(buf: Buffer, i: number): number {
  const b = buf[i]!;
  if (b < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < buf.length && buf[i + k]! >= lo && buf[i + k]! <= hi;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** The bytes a wire form stands for. A lone surrogate that is not an escaped byte is malformed (EILSEQ). */
export function bytesOfWire(text: string): Buffer {
  if (!hasLoneSurrogate(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++; // a pair: ordinary text
      else throw malformed(text);
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      if (c < FIRST_ESCAPE || c > LAST_ESCAPE) throw malformed(text);
      parts.push(Buffer.from(text.slice(start, i), 'utf8'), Buffer.of(c - FIRST_ESCAPE + 0x80));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(text.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** The length in bytes of the name a wire form stands for. */
export function wireByteLength(text: string): number {
  return hasLoneSurrogate(text) ? bytesOfWire(text).length : Buffer.byteLength(text, 'utf8');
}

/**
 * Refuse a wire form that is not the one form of its bytes: an escaped byte that
 * is part of valid UTF-8 with its neighbours, or a lone surrogate that escapes
 * nothing. Two spellings of one name would otherwise be two names to the mount's
 * caches and one to the disk.
 */
export function checkCanonicalWire(text: string, what = 'name'): void {
  if (!hasLoneSurrogate(text)) return;
  if (wireFromBytes(bytesOfWire(text)) !== text) {
    throw new MirrorError('MFS_MALFORMED', `${what} ${JSON.stringify(text)} escapes bytes that are valid UTF-8 (not the canonical wire form)`, { errno: 'EINVAL' });
  }
}

/**
 * A path for system calls: the string itself when it is plain text (Node encodes
 * it as UTF-8), else a Buffer of the bytes it stands for.
 */
export type FsPath = string | Buffer;
export function fsPath(text: string): FsPath {
  return hasLoneSurrogate(text) ? bytesOfWire(text) : text;
}

/** The directory part of an FsPath, as node:path's dirname gives it for a string ("/" is never an escaped byte). */
export function fsDirname(path: FsPath): FsPath {
  if (typeof path === 'string') return dirname(path);
  const slash = path.lastIndexOf(0x2f);
  if (slash < 0) return '.';
  return slash === 0 ? '/' : path.subarray(0, slash);
}

/** Whether two FsPaths name the same bytes. */
export function fsPathEquals(a: FsPath, b: FsPath): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  return Buffer.compare(typeof a === 'string' ? bytesOfWire(a) : a, typeof b === 'string' ? bytesOfWire(b) : b) === 0;
}

/** An FsPath as text for messages and as a wire form. */
export function fsPathText(path: FsPath): string {
  return typeof path === 'string' ? path : wireFromBytes(path);
}

/** A name from fuse-native (latin1: one character per byte) as its wire form. */
export function wireFromLatin1(text: string): string {
  return ASCII_ONLY.test(text) ? text : wireFromBytes(Buffer.from(text, 'latin1'));
}

/** A wire form as fuse-native takes it back (latin1: one character per byte). */
export function latin1FromWire(text: string): string {
  return ASCII_ONLY.test(text) ? text : bytesOfWire(text).toString('latin1');
}

/** A wire form for people: each escaped byte as \xNN (caf\xe9), the rest as it is. */
export function printable(text: string): string {
  return hasLoneSurrogate(text) ? text.replace(/[\uDC80-\uDCFF]/g, (c) => `\\x${(c.charCodeAt(0) - FIRST_ESCAPE + 0x80).toString(16)}`) : text;
}

function malformed(text: string): MirrorError {
  return new MirrorError('MFS_MALFORMED', `${JSON.stringify(text)} holds a lone surrogate that is not an escaped byte (U+DC80..U+DCFF)`, { errno: 'EILSEQ' });
}

/**
 * A wire form as a URL query value: each byte it stands for percent-encoded but
 * the unreserved ones (URLSearchParams would turn an escaped byte into U+FFFD).
 */
export function queryValueOfWire(text: string): string {
  let out = '';
  for (const byte of bytesOfWire(text)) {
    const unreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e;
    out += unreserved ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The wire form of query parameter `name` in a request's raw path ("/route?a=1&b=%E9"), or null when absent. */
export function wireQueryParam(rawPath: string, name: string): string | null {
  const question = rawPath.indexOf('?');
  if (question < 0) return null;
  for (const pair of rawPath.slice(question + 1).split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key !== name) continue;
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    const bytes: number[] = [];
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
        bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
        i += 2;
      } else if (c === 0x2b) {
        bytes.push(0x20); // "+" is a space in a query (as URLSearchParams reads it)
      } else {
        bytes.push(...Buffer.from(value[i]!, 'utf8'));
      }
    }
    return wireFromBytes(Buffer.from(bytes));
  }
  return null;
}
