import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/protocol/codec.js';
import { MirrorError } from '../../src/protocol/errors.js';
import type { RequestInput } from '../../src/protocol/ops.js';
import type { PeerClient } from '../../src/client/peer-client.js';
import { cleanupPeers, spawnPeer, TEST_TOKEN, type PeerProcess } from '../helpers/peer.js';
import { rawRequest } from '../helpers/raw.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree.js';

/**
 * Property-based fuzzing of a real peer's request handling (fast-check, fixed
 * seed, bounded runs): requests built from every operation name with hostile
 * paths, numbers and shapes, as the owner (so they reach the code that applies
 * them), and raw frames of random bytes. Properties: every request is answered
 * (the peer never crashes or hangs), every refusal is a clear error (a code and
 * an errno, never an internal error), and nothing outside the data directory
 * ever changes.
 */

const SEED = 20261125;
let peer: PeerProcess;
let client: PeerClient;
let outside: string;
let outsideBefore: TreeSnapshot;

beforeAll(async () => {
  const base = tmpDir('mirrorfs-fuzz-');
  outside = join(base, 'outside');
  mkdirSync(join(outside, 'dir'), { recursive: true });
  writeFileSync(join(outside, 'sentinel'), 'do not touch');
  peer = await spawnPeer({ name: 'fuzz', dataDir: join(base, 'data') });
  symlinkSync(outside, join(peer.dataDir, 'link-out'));
  symlinkSync(join(outside, 'sentinel'), join(peer.dataDir, 'file-out'));
  mkdirSync(join(peer.dataDir, 'a'));
  writeFileSync(join(peer.dataDir, 'a/f'), 'inside');
  outsideBefore = snapshotTree(outside);
  client = peer.client({ timeoutMs: 10_000 });
  await client.handshake('fuzz', 1);
});

afterAll(async () => {
  await cleanupPeers();
  cleanupTmp();
});

const OPS = [
  'create', 'write', 'truncate', 'unlink', 'mkdir', 'rmdir', 'rename', 'symlink', 'link', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'fsync', 'clean',
  'getattr', 'readdir', 'read', 'read-many', 'readlink', 'getxattr', 'listxattr', 'statfs',
  'handshake', 'progress', 'history', 'repair', 'adopt', 'settle', 'committed', 'format-disk',
];

const segment = fc.oneof(
  fc.constantFrom('..', '.', '', 'a', 'f', '.mirrorfs', 'link-out', 'file-out', 'sentinel', 'x'.repeat(300), 'dir'),
  fc.string({ maxLength: 6 }),
  fc.string({ unit: 'grapheme', maxLength: 3 }),
);
const path = fc.oneof(
  fc.array(segment, { maxLength: 4 }).map((parts) => parts.join('/')),
  fc.constantFrom('/etc/passwd', '../outside/sentinel', 'link-out/sentinel', 'link-out/dir', 'file-out', 'a/../../outside', 'a\u0000b', 'a//f', 'a/f/'),
);
const number = fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.constantFrom(-1, 0, 0o777, 0o7777, 2 ** 31, 2 ** 53, 1e300, Number.NaN, 0.5), fc.double());
const anyValue = fc.oneof(number, path, fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.object({ maxDepth: 1 }));
const field = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 9, arbitrary: arb }, { weight: 1, arbitrary: anyValue });
/** Mostly plausible paths (so the request reaches the code that applies it), now and then a hostile one. */
const plausiblePath = fc.oneof(
  { weight: 5, arbitrary: fc.array(fc.constantFrom('a', 'b', 'f', 'd', 'link-out', 'file-out', 'n\u00e9'), { minLength: 1, maxLength: 3 }).map((p) => p.join('/')) },
  { weight: 1, arbitrary: path },
);
const small = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 0o7777 }) }, { weight: 1, arbitrary: number });

const fields = {
    op: fc.constantFrom(...OPS),
    path: field(plausiblePath),
    from: field(plausiblePath),
    to: field(plausiblePath),
    target: field(fc.oneof(plausiblePath, fc.constantFrom('/etc', '../../outside', '/tmp'))),
    mode: field(small),
    offset: field(small),
    size: field(small),
    length: field(small),
    uid: field(small),
    gid: field(small),
    atimeMs: field(fc.oneof(number, fc.constant(null))),
    mtimeMs: field(fc.oneof(number, fc.constant(null))),
    name: field(fc.oneof(fc.constantFrom('user.x', 'user.mirrorfs.state', 'trusted.x', 'security.capability', ''), fc.string({ maxLength: 8 }))),
    flags: field(fc.constantFrom('any', 'create', 'replace')),
    exclusive: field(fc.boolean()),
    withAttrs: field(fc.boolean()),
    paths: field(fc.array(plausiblePath, { maxLength: 4 })),
    after: field(small),
    limit: field(fc.integer({ min: 1, max: 100 })),
    known: field(small),
    waitMs: field(fc.integer({ min: 0, max: 50 })),
    subject: field(fc.string({ maxLength: 20 })),
    result: field(fc.string({ maxLength: 20 })),
    protocol: field(fc.constantFrom(1, 2)),
    action: field(
      fc.record(
        { op: fc.constantFrom('remove-tree', 'put-file', 'put-dir', 'flush', 'rename', 'symlink', 'chmod', 'link'), path: plausiblePath, from: plausiblePath, to: plausiblePath, target: plausiblePath, mode: small, uid: small, gid: small, mtimeMs: small, flush: fc.boolean() },
        { requiredKeys: ['op'] },
      ),
    ),
    mount: fc.constantFrom('fuzz', 'fuzz', 'fuzz', 'fuzz', 'fuzz', 'intruder', ''),
    epoch: fc.constantFrom(1, 1, 1, 1, 1, 0, 2, -1),
    seq: fc.integer({ min: -2, max: 1_000_000 }),
  };
const chaotic = fc.record(fields, { requiredKeys: ['op'] });
const complete = fc.record(fields);


/** The fields each operation takes (so that most generated requests reach the code that applies them). */
const FIELDS: Record<string, string[]> = {
  create: ['path', 'mode', 'exclusive'], write: ['path', 'offset'], truncate: ['path', 'size'], unlink: ['path'], mkdir: ['path', 'mode'], rmdir: ['path'],
  rename: ['from', 'to'], symlink: ['target', 'path'], link: ['from', 'path'], chmod: ['path', 'mode'], chown: ['path', 'uid', 'gid'],
  utimens: ['path', 'atimeMs', 'mtimeMs'], setxattr: ['path', 'name', 'flags'], removexattr: ['path', 'name'], fsync: [], clean: [],
  getattr: ['path'], readdir: ['path', 'withAttrs'], read: ['path', 'offset', 'length'], 'read-many': ['paths'], readlink: ['path'], getxattr: ['path', 'name'], listxattr: ['path'],
  statfs: [], progress: [], history: ['after', 'limit'], repair: ['action'], adopt: ['seq', 'subject', 'result'], settle: ['seq'], committed: ['seq', 'known', 'waitMs'],
};
const STAMPED = new Set(['create', 'write', 'truncate', 'unlink', 'mkdir', 'rmdir', 'rename', 'symlink', 'link', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr', 'clean', 'repair', 'adopt', 'settle']);
const shaped = fc.constantFrom(...Object.keys(FIELDS)).chain((op) =>
  complete.map((r) => {
    const out: Record<string, unknown> = { op };
    for (const f of FIELDS[op]!) if (f in r) out[f] = (r as Record<string, unknown>)[f];
    if (STAMPED.has(op)) Object.assign(out, { mount: r.mount, epoch: r.epoch, seq: r.seq });
    if (op === 'progress' || op === 'history' || op === 'committed' || op === 'fsync') out.mount = r.mount;
    if (op === 'repair' || op === 'settle' || op === 'adopt') delete out.seq;
    if (op === 'settle' || op === 'adopt' || op === 'committed') out.seq = r.seq;
    return out;
  }),
);
const request = fc.oneof({ weight: 3, arbitrary: shaped }, { weight: 1, arbitrary: chaotic });

/** A clear refusal: a MirrorError with a code and an errno, never an internal error, a crash or a hang. */
function expectClearRefusal(err: unknown, req: unknown): void {
  expect(err, JSON.stringify(req)).toBeInstanceOf(MirrorError);
  const e = err as MirrorError;
  expect(e.errno, JSON.stringify(req)).toMatch(/^E[A-Z0-9]+$/);
  expect(['MFS_INTERNAL', 'MFS_UNREACHABLE', 'MFS_TIMEOUT', 'MFS_BAD_RESPONSE'], `${e.message} for ${JSON.stringify(req)}`).not.toContain(e.code);
}

describe('fuzzing the peer (fast-check, fixed seed)', () => {
  it('hostile requests as the owner: each is answered or clearly refused, and nothing outside the data directory changes', async () => {
    await fc.assert(
      fc.asyncProperty(request, fc.uint8Array({ maxLength: 64 }), async (req, payload) => {
        // A pull would make the peer connect where the request says; it is owner-only and tested apart.
        if ((req as { op: string }).op === 'pull') return;
        await client.call(req as unknown as RequestInput, Buffer.from(payload)).catch((err: unknown) => expectClearRefusal(err, req));
      }),
      { seed: SEED, numRuns: 1500, endOnFailure: true },
    );
    expect(snapshotTree(outside)).toEqual(outsideBefore);
    expect((await client.status()).name).toBe('fuzz'); // still up
    expect(peer.stderr()).not.toMatch(/internal error/);
  });

  it('random bytes as frames: each gets an error answer, and the peer stays up', async () => {
    const headers = { 'mirrorfs-protocol': String(PROTOCOL_VERSION), authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/x-mirrorfs-frame' };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.jsonValue().map((v) => encodeFrame(v)),
          fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 50 })).map(([n, rest]) => {
            const b = Buffer.alloc(4);
            b.writeUInt32BE(n);
            return Buffer.concat([b, Buffer.from(rest)]);
          }),
        ),
        async (body) => {
          const r = await rawRequest(peer.url, { path: '/v1/call', headers, body, timeoutMs: 10_000 });
          expect(r.reset, 'a reset instead of an answer').toBeUndefined();
          expect(r.status).toBeGreaterThan(0);
          if (r.status !== 200) return;
          // An answer to something that happened to decode: an outcome frame either way.
          expect(r.body.length).toBeGreaterThan(4);
        },
      ),
      { seed: SEED, numRuns: 300, endOnFailure: true },
    );
    expect(snapshotTree(outside)).toEqual(outsideBefore);
    expect((await client.status()).name).toBe('fuzz');
  });
});
