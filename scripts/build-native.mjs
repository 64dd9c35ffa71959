#!/usr/bin/env node
// Build mirrorfs's own addon, native/posix (the syscalls node:fs lacks: src/store/posix.ts),
// with the node-gyp that ships with npm and the Node headers npm is configured with (no
// download), as scripts/patch-fuse-native.mjs builds fuse-native. Idempotent: does nothing
// while build/Release/posix.node is newer than its sources.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const dir = resolve(import.meta.dirname, '../native/posix');
const sources = ['posix.c', 'binding.gyp'].map((name) => join(dir, name));
const addon = join(dir, 'build/Release/posix.node');

function fail(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

if (existsSync(addon)) {
  const built = statSync(addon).mtimeMs;
  if (sources.every((source) => statSync(source).mtimeMs < built)) process.exit(0);
}

const require = createRequire(import.meta.url);
let nodeGyp;
try {
  const npmDir = dirname(require.resolve('npm/package.json', { paths: [join(dirname(process.execPath), '../lib/node_modules')] }));
  nodeGyp = join(npmDir, 'node_modules/node-gyp/bin/node-gyp.js');
} catch {
  fail(`cannot find npm next to ${process.execPath}, whose node-gyp builds the addon`);
}
if (!existsSync(nodeGyp)) fail(`npm has no node-gyp at ${nodeGyp}`);

let nodedir = process.env.npm_config_nodedir;
if (!nodedir) nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
const args = [nodeGyp, 'rebuild', '--loglevel=error', ...(nodedir && nodedir !== 'undefined' ? [`--nodedir=${nodedir}`] : [])];

console.error(`build-native: building ${addon}`);
try {
  execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
} catch (err) {
  fail(`building native/posix failed (${err.status != null ? `node-gyp exited with ${err.status}` : err.message}); the compiler's messages are above. It needs a C compiler, make and python3 (apt-get install -y build-essential python3), and the Node headers (npm config get nodedir: ${nodedir || 'unset'})`);
}
if (!existsSync(addon)) fail(`node-gyp succeeded but ${addon} is missing`);
