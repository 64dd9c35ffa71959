import { latin1FromWire, wireFromLatin1 } from '../../protocol/byte-names.js';
import { errnoNumber } from '../../protocol/errors.js';

/**
 * Names are bytes (protocol/byte-names.ts). Our patched fuse-native hands every
 * path, xattr name and symlink target to JavaScript as a latin1 string (one
 * character per byte) and takes names back the same way
 * (scripts/patch-fuse-native.mjs). This wraps the FUSE operations so that they
 * see, and answer with, wire forms only: valid UTF-8 as the text it is, any
 * other byte escaped. Everything behind it (caches, the controller, the wire)
 * works on one form of each name.
 */

type Op = (...args: never[]) => void;
const EIO = errnoNumber('EIO');
type Cb = (code: number, ...rest: unknown[]) => void;

/** The arguments of each operation that are names (fuse-native's order); every other operation takes one path first. */
const NAME_ARGS: Readonly<Record<string, readonly number[]>> = {
  symlink: [0, 1], // target, path
  link: [0, 1], // src, dest
  rename: [0, 1], // src, dest
  setxattr: [0, 1], // path, xattr name
  getxattr: [0, 1],
  removexattr: [0, 1],
};

/** What each operation answers with that is a name: converted back to latin1. */
const ANSWERS: Readonly<Record<string, (rest: unknown[]) => unknown[]>> = {
  readdir: ([names, stats]) => [(names as string[]).map(latin1FromWire), stats],
  readlink: ([target]) => [latin1FromWire(target as string)],
  listxattr: ([names]) => [(names as string[]).map(latin1FromWire)],
};

export function withByteNames(ops: Record<string, Op>): Record<string, Op> {
  const wrapped: Record<string, Op> = {};
  for (const [name, op] of Object.entries(ops)) {
    const nameArgs = NAME_ARGS[name] ?? [0];
    const answer = ANSWERS[name];
    wrapped[name] = (...args: unknown[]) => {
      for (const i of nameArgs) if (typeof args[i] === 'string') args[i] = wireFromLatin1(args[i] as string);
      if (answer) {
        const cb = args[args.length - 1] as Cb;
        args[args.length - 1] = (code: number, ...rest: unknown[]) => {
          if (code !== 0 || rest.length === 0) return cb(code, ...rest);
          let converted: unknown[];
          try {
            converted = answer(rest);
          } catch {
            return cb(-EIO); // a name no byte string has (a peer's malformed answer): refused, not passed on
          }
          cb(code, ...converted);
        };
      }
      // Synchronously: an operation reads its caller first thing (fuse-binding.ts).
      (op as (...a: unknown[]) => void)(...args);
    };
  }
  return wrapped;
}
