#!/usr/bin/env node
// postinstall: fix a bug in fuse-native 2.2.6 and rebuild its addon.
//
// fuse-native's utimens hands JavaScript the access time twice (its C source
// passes l->atime where l->mtime belongs), so every utimens() on a FUSE
// mount would set mtime to atime. The fix is one line of its C source; the
// addon is then rebuilt from source with the node-gyp that ships with npm
// (npm already builds it from source on this platform). Idempotent: does
// nothing once the source carries the fix and the addon was built after it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let dir;
try {
  dir = dirname(require.resolve('fuse-native/package.json'));
} catch {
  process.exit(0); // not installed (e.g. a production install without it): nothing to do
}
const source = join(dir, 'fuse-native.c');
const addon = join(dir, 'build/Release/fuse.node');
const BUG = 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)';
const FIX = 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)';

let text = readFileSync(source, 'utf8');
if (text.includes(BUG)) {
  text = text.replace(BUG, FIX);
  writeFileSync(source, text);
  console.error('patch-fuse-native: fixed utimens (mtime) in fuse-native.c');
}
if (!text.includes(FIX)) {
  console.error('patch-fuse-native: fuse-native.c does not look like 2.2.6; not patched');
  process.exit(1);
}
if (existsSync(addon) && statSync(addon).mtimeMs > statSync(source).mtimeMs) process.exit(0);

const npmDir = dirname(dirname(require.resolve('npm/package.json', { paths: [join(dirname(process.execPath), '../lib/node_modules')] })));
const nodeGyp = join(npmDir, 'npm/node_modules/node-gyp/bin/node-gyp.js');
// Build against the Node headers npm is configured with (no download needed).
let nodedir = process.env.npm_config_nodedir;
if (!nodedir) nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
const args = [nodeGyp, 'rebuild', '--loglevel=error', ...(nodedir && nodedir !== 'undefined' ? [`--nodedir=${nodedir}`] : [])];
console.error('patch-fuse-native: rebuilding the fuse-native addon');
execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
