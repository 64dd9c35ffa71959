import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkMountpoint } from '../../src/mount/control/mountpoint.js';
import { loadConfig, resolvePeers } from '../../src/mount/peers/config.js';
import { CLEARTEXT } from '../../src/security/transport.js';
import { Refusal } from '../../src/refusal.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';

/** Mount-time refusals carry a code and an errno (callers such as `mirrorfs doctor` branch on the code), and keep their message. */
afterAll(() => cleanupTmp());

function refusalOf(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Refusal);
    return err as Refusal;
  }
  throw new Error('expected a refusal');
}

describe('mount-time refusals', () => {
  it('name what is wrong with a mount point by code and errno', () => {
    const dir = tmpDir();
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'inside'), 'x');
    expect(refusalOf(() => checkMountpoint(join(dir, 'missing')))).toMatchObject({ code: 'MOUNTPOINT_MISSING', errno: 'ENOENT', message: expect.stringMatching(/does not exist \(create it: mkdir -p /) });
    expect(refusalOf(() => checkMountpoint(file))).toMatchObject({ code: 'MOUNTPOINT_NOT_DIR', errno: 'ENOTDIR' });
    expect(refusalOf(() => checkMountpoint(full))).toMatchObject({ code: 'MOUNTPOINT_NOT_EMPTY', errno: 'ENOTEMPTY' });
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => checkMountpoint(empty)).not.toThrow();
  });

  it('name a bad --peers list or a missing token by code', () => {
    const cleartext = CLEARTEXT;
    const none = loadConfig(undefined);
    const tokenFile = join(tmpDir(), 'token');
    writeFileSync(tokenFile, 'a-token-of-enough-length\n');
    expect(refusalOf(() => resolvePeers('', none, cleartext, undefined))).toMatchObject({ code: 'PEERS_INVALID', errno: 'EINVAL' });
    expect(refusalOf(() => resolvePeers('east=http://127.0.0.1:1,east=http://127.0.0.1:2', none, cleartext, tokenFile))).toMatchObject({ code: 'PEERS_INVALID' });
    expect(refusalOf(() => resolvePeers('east=http://127.0.0.1:1', none, cleartext, undefined))).toMatchObject({ code: 'TOKEN_MISSING' });
  });
});
