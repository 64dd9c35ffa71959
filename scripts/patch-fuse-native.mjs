#!/usr/bin/env node
// postinstall: fix fuse-native 2.2.6's utimens (see EDITS) and rebuild its addon
// from source with the node-gyp that ships with npm (npm already builds it from
// source on this platform when its prebuild cannot load). Idempotent: does
// nothing once the source carries the fixes and the addon was built after them.
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
/**
 * The edits, each [what, bug, fix]. Idempotent: an edit whose fix is present is skipped.
 * 1. utimens hands JavaScript the access time twice (l->atime where l->mtime belongs).
 * 2. Without flag_utime_omit_ok, libfuse 2 silently skips utimens when only one
 *    time is set (`touch -m`, `touch -a`): the call succeeds and changes nothing.
 * 3. With it, UTIME_NOW and UTIME_OMIT must reach JavaScript distinguishably:
 *    they become the sentinels 2^52-1 (now) and 2^52-2 (omit), in milliseconds.
 */
const EDITS = [
  ['utimens mtime', 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)', 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
  ['utimens with one time', 'struct fuse_operations ops = { };', 'struct fuse_operations ops = { };\n  ops.flag_utime_omit_ok = 1;'],
  [
    'UTIME_NOW/UTIME_OMIT sentinels',
    'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n',
    'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n  if (ts->tv_nsec == UTIME_NOW) return 4503599627370495ULL;\n  if (ts->tv_nsec == UTIME_OMIT) return 4503599627370494ULL;\n',
  ],
];

let text = readFileSync(source, 'utf8');
let changed = false;
for (const [what, bug, fix] of EDITS) {
  if (text.includes(fix)) continue;
  if (!text.includes(bug)) {
    console.error(`patch-fuse-native: cannot apply "${what}": fuse-native.c does not look like 2.2.6`);
    process.exit(1);
  }
  text = text.replace(bug, fix);
  changed = true;
  console.error(`patch-fuse-native: applied "${what}"`);
}
if (changed) writeFileSync(source, text);
if (existsSync(addon) && statSync(addon).mtimeMs > statSync(source).mtimeMs) process.exit(0);

const npmDir = dirname(dirname(require.resolve('npm/package.json', { paths: [join(dirname(process.execPath), '../lib/node_modules')] })));
const nodeGyp = join(npmDir, 'npm/node_modules/node-gyp/bin/node-gyp.js');
// Build against the Node headers npm is configured with (no download needed).
let nodedir = process.env.npm_config_nodedir;
if (!nodedir) nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
const args = [nodeGyp, 'rebuild', '--loglevel=error', ...(nodedir && nodedir !== 'undefined' ? [`--nodedir=${nodedir}`] : [])];
console.error('patch-fuse-native: rebuilding the fuse-native addon');
execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
