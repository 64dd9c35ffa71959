#!/usr/bin/env node
// postinstall: fix fuse-native 2.2.6 (see C_EDITS and JS_EDITS), port it to libfuse 3
// (C_EDITS 14-38, GYP_EDITS; docs/decisions/0003: needs libfuse3-dev and pkg-config: with
// POSIX ACLs, and `invalidate(path, cb)` for the names of hard-linked files) and
// rebuild its addon from source with the node-gyp that ships with npm. Idempotent: does
// nothing once the source carries the fixes and the addon was built after them; a tree
// patched by an earlier version of this script is brought to the same result.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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
 * The edits to the C source, each [what, bug, fix]. Idempotent: an edit whose fix is present is skipped.
 * 1. utimens hands JavaScript the access time twice (l->atime where l->mtime belongs).
 * 2. Without flag_utime_omit_ok, libfuse 2 silently skips utimens when only one
 *    time is set (`touch -m`, `touch -a`): the call succeeds and changes nothing.
 * 3. Times reached JavaScript in milliseconds (a time set to 0.1 s read back as
 *    0.099 s on the peers): utimens now hands over nanoseconds since the epoch as a
 *    signed 64-bit integer (two uint32 halves), with UTIME_NOW and UTIME_OMIT as the
 *    sentinels INT64_MAX and INT64_MAX-1 (JS_EDITS 4 makes them a BigInt); and a
 *    stat carries, after its three millisecond times, the nanoseconds within each
 *    millisecond (JS_EDITS 5 fills them); a stat's milliseconds are signed, so times
 *    before 1970 show as such; a time beyond what int64 nanoseconds hold (before 1678,
 *    after 2262) is the sentinel INT64_MAX-2, and the exact seconds and nanoseconds of
 *    both times wait in the thread locals (offset 16), where JavaScript reads them. The stat also
 *    carries the high half of st_ino: with use_ino, inode numbers over 2^32 (XFS)
 *    cut to 32 bits could make two files look like links of one.
 * 6-9. fallocate(2) (libfuse 2.9.1's op) is not in the binding at all, so the kernel
 *    answered EOPNOTSUPP: a new op 34 that hands JavaScript the mode, offset and
 *    length (JS_EDITS 6-7).
 * 10-13. Names are bytes, but the binding decoded every path, name and symlink
 *    target as UTF-8 (invalid bytes became U+FFFD, so two names could become one)
 *    and encoded them back likewise: they now cross as latin1 strings, one
 *    character per byte, both ways (mount/fuse/fuse-names.ts turns them into wire forms).
 * 4-5. The binding hides who made a request (fuse_get_context: the caller's fsuid,
 *    fsgid, pid and umask), so everything created through the mount was owned by
 *    the mount process. Each request's caller is copied into the first 16 bytes of
 *    the thread's locals, which JavaScript holds as a Buffer (see JS_EDITS 1).
 */
/** Marks an edit that replaces every occurrence of its bug (done when none is left). */
const ALL = 'all';

const C_EDITS = [
  ['utimens mtime', 'FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)', 'FUSE_UINT64_TO_INTS_ARGV(l->mtime, 5)'],
  [
    'utimens in nanoseconds, UTIME_NOW/UTIME_OMIT sentinels',
    'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n  uint64_t ms = (ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);\n  return ms;\n}\n',
    'static uint64_t timespec_to_uint64 (const struct timespec* ts) {\n  if (ts->tv_nsec == UTIME_NOW) return (uint64_t) INT64_MAX;\n  if (ts->tv_nsec == UTIME_OMIT) return (uint64_t) INT64_MAX - 1;\n  if (ts->tv_sec > 9223372035LL || ts->tv_sec < -9223372035LL) return (uint64_t) INT64_MAX - 2; /* beyond int64 ns: refused as EOVERFLOW */\n  return (uint64_t) ((int64_t) ts->tv_sec * 1000000000LL + ts->tv_nsec);\n}\n',
  ],
  [
    'stat times before 1970',
    'static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {\n  uint64_t ms = uint32s_to_uint64(ints);\n  ts->tv_sec = ms / 1000;\n  ts->tv_nsec = (ms % 1000) * 1000000;\n}\n',
    'static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {\n  int64_t ms = (int64_t) uint32s_to_uint64(ints);\n  int64_t rem = ms % 1000;\n  if (rem < 0) rem += 1000;\n  ts->tv_sec = (ms - rem) / 1000;\n  ts->tv_nsec = rem * 1000000;\n}\n',
  ],
  [
    'stat nanoseconds',
    '  uint32s_to_timespec(&stat->st_ctim, &ints);\n#endif\n',
    '  uint32s_to_timespec(&stat->st_ctim, &ints);\n  // mirrorfs: the nanoseconds within each millisecond (getStatArray ints 18-20), and the high half of st_ino (21)\n  stat->st_atim.tv_nsec += *ints++;\n  stat->st_mtim.tv_nsec += *ints++;\n  stat->st_ctim.tv_nsec += *ints++;\n  stat->st_ino |= ((uint64_t) *ints++) << 32;\n#endif\n',
  ],
  [
    'caller in the thread locals',
    'typedef struct {\n  napi_ref self;\n',
    'typedef struct {\n  // mirrorfs: the requesting process (uid, gid, pid, umask), at offset 0 for JavaScript\n  uint32_t caller[4];\n  napi_ref self;\n',
  ],
  [
    'caller of each request',
    '  fuse_thread_locals_t *l = get_thread_locals();\\\n  l->op = op_##name;\\\n',
    '  fuse_thread_locals_t *l = get_thread_locals();\\\n  { struct fuse_context *fc = fuse_get_context(); l->caller[0] = fc->uid; l->caller[1] = fc->gid; l->caller[2] = fc->pid; l->caller[3] = fc->umask; }\\\n  l->op = op_##name;\\\n',
  ],
  ['fallocate op code', 'static const uint32_t op_rmdir = 33;\n', 'static const uint32_t op_rmdir = 33;\nstatic const uint32_t op_fallocate = 34;\n'],
  [
    'fallocate method',
    'static void fuse_native_dispatch_init (uv_async_t* handle',
    'FUSE_METHOD_VOID(fallocate, 6, 0, (const char *path, int mode, off_t offset, off_t len, struct fuse_file_info *info), {\n  l->path = path;\n  l->mode = mode;\n  l->offset = offset;\n  l->len = len;\n  l->info = info;\n}, {\n  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));\n  napi_create_uint32(env, l->mode, &(argv[3]));\n  FUSE_UINT64_TO_INTS_ARGV(l->offset, 4)\n  FUSE_UINT64_TO_INTS_ARGV(l->len, 6)\n})\n\nstatic void fuse_native_dispatch_init (uv_async_t* handle',
  ],
  ['fallocate registered', '  if (implemented[op_rmdir]) ops.rmdir = fuse_native_rmdir;\n', '  if (implemented[op_rmdir]) ops.rmdir = fuse_native_rmdir;\n  if (implemented[op_fallocate]) ops.fallocate = fuse_native_fallocate;\n'],
  ['fallocate exported', '  NAPI_EXPORT_FUNCTION(fuse_native_signal_rmdir)\n', '  NAPI_EXPORT_FUNCTION(fuse_native_signal_rmdir)\n  NAPI_EXPORT_FUNCTION(fuse_native_signal_fallocate)\n'],
  ['fallocate op exported', '  NAPI_EXPORT_UINT32(op_rmdir)\n', '  NAPI_EXPORT_UINT32(op_rmdir)\n  NAPI_EXPORT_UINT32(op_fallocate)\n'],
  [
    'names as bytes: the macro',
    '#include <napi-macros.h>\n',
    '#include <napi-macros.h>\n\n// mirrorfs: a name from JavaScript as latin1, one byte per character (names are bytes, not UTF-8)\n#define NAPI_LATIN1(name, size, val) \\\n  char name[size]; \\\n  size_t name##_len; \\\n  if (napi_get_value_string_latin1(env, val, (char *) &name, size, &name##_len) != napi_ok) { \\\n    napi_throw_error(env, "EINVAL", "Expected string"); \\\n    return NULL; \\\n  }\n',
  ],
  ['names as bytes: paths and names to JavaScript', 'napi_create_string_utf8(env, l->', 'napi_create_string_latin1(env, l->', ALL],
  ['names as bytes: readdir names from JavaScript', 'NAPI_UTF8(name, 1024, raw_name)', 'NAPI_LATIN1(name, 1024, raw_name)', ALL],
  ['names as bytes: readlink target from JavaScript', 'NAPI_ARGV_UTF8(linkname, l->len, 2)', 'NAPI_LATIN1(linkname, l->len, argv[2])'],
  // libfuse 3 (C_EDITS 14-38; docs/decisions/0003-libfuse3.md)
  ['libfuse 3: no flag_utime_omit_ok (it always passes UTIME_NOW and UTIME_OMIT)', '\n  ops.flag_utime_omit_ok = 1;', ''],
  ['libfuse 3: API version', '#define FUSE_USE_VERSION 29\n', '#define FUSE_USE_VERSION 31\n'],
  ['libfuse 3: no channel', '  struct fuse_chan *ch;\n', ''],
  ['libfuse 3: getattr', 'FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat), {', 'FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {'],
  ['libfuse 3: utimens', 'FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {', 'FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2], struct fuse_file_info *info), {'],
  ['libfuse 3: readdir', 'FUSE_METHOD(readdir, 1, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info), {', 'FUSE_METHOD(readdir, 1, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info, enum fuse_readdir_flags readdir_flags), {'],
  // No FUSE_FILL_DIR_PLUS: an entry's stat carries only its type bits, not attributes the kernel may keep.
  ['libfuse 3: readdir names', 'l->readdir_filler((char *) l->buf, name, NULL, 0);', 'l->readdir_filler((char *) l->buf, name, NULL, 0, 0);'],
  ['libfuse 3: readdir entries', 'l->readdir_filler((char *) l->buf, name, (struct stat *) &st, 0);', 'l->readdir_filler((char *) l->buf, name, (struct stat *) &st, 0, 0);'],
  ['libfuse 3: truncate', 'FUSE_METHOD_VOID(truncate, 3, 0, (const char *path, off_t size), {', 'FUSE_METHOD_VOID(truncate, 3, 0, (const char *path, off_t size, struct fuse_file_info *info), {'],
  ['libfuse 3: chown', 'FUSE_METHOD_VOID(chown, 3, 0, (const char *path, uid_t uid, gid_t gid), {', 'FUSE_METHOD_VOID(chown, 3, 0, (const char *path, uid_t uid, gid_t gid, struct fuse_file_info *info), {'],
  ['libfuse 3: chmod', 'FUSE_METHOD_VOID(chmod, 2, 0, (const char *path, mode_t mode), {', 'FUSE_METHOD_VOID(chmod, 2, 0, (const char *path, mode_t mode, struct fuse_file_info *info), {'],
  [
    'libfuse 3: rename with its flags (RENAME_NOREPLACE 1, RENAME_EXCHANGE 2)',
    'FUSE_METHOD_VOID(rename, 2, 0, (const char *path, const char *dest), {\n  l->path = path;\n  l->dest = dest;\n}, {\n  napi_create_string_latin1(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));\n  napi_create_string_latin1(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));\n})',
    'FUSE_METHOD_VOID(rename, 3, 0, (const char *path, const char *dest, unsigned int flags), {\n  l->path = path;\n  l->dest = dest;\n  l->flags = flags;\n}, {\n  napi_create_string_latin1(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));\n  napi_create_string_latin1(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));\n  napi_create_uint32(env, l->flags, &(argv[4]));\n})',
  ],
  [
    'libfuse 3: init, with inode numbers from getattr (use_ino is no longer an option)',
    'static void * fuse_native_init (struct fuse_conn_info *conn) {\n',
    '// mirrorfs: st_ino is the file\'s own (names of a hard-linked file share it). The kernel keeps\n// doing what it did with libfuse 2: O_TRUNC as a truncate of its own (the mount answers no open,\n// so an O_TRUNC inside open would be lost), and clearing set-ID bits itself (with a chmod).\nstatic void mirrorfs_configure (struct fuse_conn_info *conn, struct fuse_config *cfg) {\n  cfg->use_ino = 1;\n  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV);\n}\n\n// The binding\'s own data stays private_data.\nstatic void * mirrorfs_init (struct fuse_conn_info *conn, struct fuse_config *cfg) {\n  mirrorfs_configure(conn, cfg);\n  return fuse_get_context()->private_data;\n}\n\nstatic void * fuse_native_init (struct fuse_conn_info *conn, struct fuse_config *cfg) {\n  mirrorfs_configure(conn, cfg);\n',
  ],
  [
    'libfuse 3: POSIX ACLs, enforced by the kernel, and the umask left to the mount',
    '  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV);\n}\n',
    '  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV);\n  // POSIX ACLs: the kernel checks them (it reads system.posix_acl_* through getxattr). A new\n  // entry\'s mode then arrives with the caller\'s umask beside it, not applied: a default ACL\n  // in its directory overrides the umask, and only the copies, which hold that ACL, know.\n  if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK)) conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;\n}\n',
  ],
  ['libfuse 3: init always', '  if (implemented[op_init]) ops.init = fuse_native_init;\n', '  ops.init = implemented[op_init] ? fuse_native_init : mirrorfs_init;\n'],
  ['libfuse 3: no ftruncate', '  if (implemented[op_ftruncate]) ops.ftruncate = fuse_native_ftruncate;\n', ''],
  ['libfuse 3: no fgetattr', '  if (implemented[op_fgetattr]) ops.fgetattr = fuse_native_fgetattr;\n', ''],
  [
    'libfuse 3: the loop and unmount',
    '  fuse_loop_mt(ft->fuse);\n\n  fuse_unmount(ft->mnt, ft->ch);\n  fuse_session_remove_chan(ft->ch);\n',
    '  fuse_loop_mt(ft->fuse, 0);\n\n  fuse_unmount(ft->fuse);\n',
  ],
  [
    'libfuse 3: new, then mount',
    '  struct fuse_chan *ch = fuse_mount(mnt, &args);\n\n  if (ch == NULL) {\n    napi_throw_error(env, "fuse failed", "fuse failed");\n    return NULL;\n  }\n\n  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);\n',
    '  struct fuse *fuse = fuse_new(&args, &ops, sizeof(struct fuse_operations), ft);\n  if (fuse == NULL || fuse_mount(fuse, mnt) != 0) {\n    if (fuse != NULL) fuse_destroy(fuse);\n    napi_throw_error(env, "fuse failed", "fuse failed");\n    return NULL;\n  }\n',
  ],
  ['libfuse 3: no channel kept', '  ft->ch = ch;\n', ''],
  ['libfuse 3: invalidate one path (for the names of hard-linked files)', 'NAPI_INIT() {\n', "// mirrorfs: drop the kernel's attributes and cached pages of one path, as libfuse knows it\n// (fuse_invalidate_path): what a change through another name of a hard-linked file made\n// stale. The next stat or read of that name asks us again. On libuv's thread pool: dropping\n// pages waits for a read of that file in flight, which the JavaScript thread answers.\ntypedef struct {\n  napi_async_work work;\n  napi_ref callback;\n  fuse_thread_t *ft;\n  char path[4097];\n  int result;\n} mirrorfs_invalidation_t;\n\nstatic void mirrorfs_invalidate_execute (napi_env env, void *data) {\n  mirrorfs_invalidation_t *w = (mirrorfs_invalidation_t *) data;\n  if (w->result != 0) return;\n  // The FUSE thread tears the session down (unmount, destroy) only once no invalidation holds this.\n  uv_rwlock_rdlock(&(w->ft->mirrorfs_alive_lock));\n  w->result = w->ft->mirrorfs_alive ? fuse_invalidate_path(w->ft->fuse, w->path) : -ENOENT;\n  uv_rwlock_rdunlock(&(w->ft->mirrorfs_alive_lock));\n}\n\nstatic void mirrorfs_invalidate_complete (napi_env env, napi_status status, void *data) {\n  mirrorfs_invalidation_t *w = (mirrorfs_invalidation_t *) data;\n  napi_value callback, global, argv[1], ignored;\n  napi_get_reference_value(env, w->callback, &callback);\n  napi_get_global(env, &global);\n  napi_create_int32(env, status == napi_ok ? w->result : -EIO, &(argv[0]));\n  napi_call_function(env, global, callback, 1, argv, &ignored);\n  napi_delete_reference(env, w->callback);\n  napi_delete_async_work(env, w->work);\n  free(w);\n}\n\n// invalidate(thread, path as latin1, callback(result)): result 0, or a negative errno (-ENOENT: not known to the kernel).\nNAPI_METHOD(fuse_native_invalidate) {\n  NAPI_ARGV(3)\n  NAPI_ARGV_BUFFER_CAST(fuse_thread_t *, ft, 0);\n  mirrorfs_invalidation_t *w = calloc(1, sizeof(mirrorfs_invalidation_t));\n  if (w == NULL) {\n    napi_throw_error(env, \"ENOMEM\", \"out of memory\");\n    return NULL;\n  }\n  size_t len = 0;\n  w->ft = ft;\n  if (napi_get_value_string_latin1(env, argv[1], w->path, sizeof(w->path), &len) != napi_ok) {\n    free(w);\n    napi_throw_error(env, \"EINVAL\", \"Expected string\");\n    return NULL;\n  }\n  if (len >= sizeof(w->path) - 1) w->result = -ENAMETOOLONG;\n  if (ft->mounted <= 0) w->result = -ENOENT; // never mounted (its lock not made yet), or unmounted\n  napi_value name;\n  napi_create_string_utf8(env, \"mirrorfs:invalidate\", NAPI_AUTO_LENGTH, &name);\n  napi_create_reference(env, argv[2], 1, &(w->callback));\n  napi_create_async_work(env, NULL, name, mirrorfs_invalidate_execute, mirrorfs_invalidate_complete, w, &(w->work));\n  napi_queue_async_work(env, w->work);\n  return NULL;\n}\n\nNAPI_INIT() {\n"],
  [
    "utimens times beyond 64-bit nanoseconds: room in the thread locals",
    "  uint32_t caller[4];\n  napi_ref self;\n",
    "  uint32_t caller[4];\n  // mirrorfs: utimens's two times as seconds (int64: low, high half) and nanoseconds, at\n  // offset 16 for JavaScript: the exact form of a time 64-bit nanoseconds cannot hold\n  // (before 1678, after 2262), for which the argument is the sentinel INT64_MAX-2\n  uint32_t times[6];\n  napi_ref self;\n",
  ],
  [
    "utimens times beyond 64-bit nanoseconds: kept",
    "  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n",
    "  l->atime = timespec_to_uint64(&tv[0]);\n  l->mtime = timespec_to_uint64(&tv[1]);\n  for (int i = 0; i < 2; i++) {\n    uint64_t sec = (uint64_t) (int64_t) tv[i].tv_sec;\n    l->times[3 * i] = (uint32_t) sec;\n    l->times[3 * i + 1] = (uint32_t) (sec >> 32);\n    l->times[3 * i + 2] = (uint32_t) tv[i].tv_nsec;\n  }\n",
  ],
  [
    "invalidate: the session's lifetime, in the thread",
    "  int mounted;\n",
    "  int mounted;\n  // mirrorfs: invalidations (fuse_invalidate_path) run while this is set, under its lock\n  uv_rwlock_t mirrorfs_alive_lock;\n  int mirrorfs_alive;\n",
  ],
  [
    "invalidate: the session's lifetime, from the mount",
    "  ft->mounted++;\n",
    "  ft->mounted++;\n  uv_rwlock_init(&(ft->mirrorfs_alive_lock));\n  ft->mirrorfs_alive = 1;\n",
  ],
  [
    "invalidate: the session's lifetime, to the unmount",
    "  fuse_loop_mt(ft->fuse, 0);\n\n  fuse_unmount(ft->fuse);\n",
    "  fuse_loop_mt(ft->fuse, 0);\n\n  // mirrorfs: no invalidation may reach the session once it is torn down (its fd closed, its memory freed)\n  uv_rwlock_wrlock(&(ft->mirrorfs_alive_lock));\n  ft->mirrorfs_alive = 0;\n  uv_rwlock_wrunlock(&(ft->mirrorfs_alive_lock));\n  fuse_unmount(ft->fuse);\n",
  ],
  ['libfuse 3: invalidate exported', '  NAPI_EXPORT_FUNCTION(fuse_native_unmount)\n', '  NAPI_EXPORT_FUNCTION(fuse_native_unmount)\n  NAPI_EXPORT_FUNCTION(fuse_native_invalidate)\n'],
];

/** The build file: libfuse 3 from the system (pkg-config fuse3), instead of fuse-shared-library's libfuse 2. */
const GYP_EDITS = [
  ['libfuse 3 headers', `"<!(node -e \\"require('fuse-shared-library/include')\\")",`, '"<!@(pkg-config fuse3 --cflags-only-I | sed s/-I//g)",'],
  ['libfuse 3 library', `"libraries": [\n      "<!(node -e \\"require('fuse-shared-library/lib')\\")",\n    ],`, '"libraries": [\n      "<!@(pkg-config --libs fuse3)",\n    ],'],
  [
    'no copy of libfuse 2',
    `, {\n    "target_name": "postinstall",\n    "type": "none",\n    "dependencies": ["fuse"],\n    "copies": [{\n      "destination": "build/Release",\n      "files": [ "<!(node -e \\"require('fuse-shared-library/lib')\\")" ],\n    }]\n  }]`,
    ']',
  ],
];

/**
 * The edits to index.js (no rebuild needed).
 * 1. The handler of each request keeps the thread locals that carry its caller in
 *    `fuse.caller` while the operation is called (synchronously), so an operation
 *    reads its caller first thing (mount/fuse/fuse-binding.ts callerOf).
 * 2. getxattr with a buffer smaller than the value answered the value's length, which
 *    libfuse then tried to send whole: the kernel refused the reply ("writing device:
 *    Invalid argument") and the caller got EIO instead of ERANGE (with which it retries
 *    with a bigger buffer, as Python's os.getxattr does).
 * 3. listxattr likewise: ERANGE for a small buffer, and the exact size for a size
 *    query (it added 128 bytes for macOS).
 * 4. utimens passes each time as a BigInt of nanoseconds (C_EDITS 3).
 * 5. getStatArray carries atimeNsRem, mtimeNsRem and ctimeNsRem: the nanoseconds
 *    within each millisecond time (C_EDITS 4).
 * 6-7. The fallocate op (C_EDITS 6-9): ops.fallocate(path, mode, offset, length, cb).
 * 9-10. listxattr writes names as latin1, one byte per character (C_EDITS 10-13).
 */
const JS_EDITS = [
  [
    'caller kept for the operation',
    '      return function (nativeHandler, opCode, ...args) {\n',
    '      return function (nativeHandler, opCode, ...args) {\n        self.caller = nativeHandler\n',
  ],
  [
    'getxattr ERANGE',
    '        value.copy(valueBuf)\n',
    '        if (valueBuf.length && value.length > valueBuf.length) return signal(-34, valueBuf.buffer)\n        value.copy(valueBuf)\n',
  ],
  [
    'listxattr exact size and ERANGE',
    '          size += 128 // fuse yells if we do not signal room for some mac stuff also\n',
    '',
  ],
  [
    'utimens in nanoseconds',
    '    const atime = getDoubleArg(atimeLow, atimeHigh)\n    const mtime = getDoubleArg(mtimeLow, mtimeHigh)\n',
    '    const atime = BigInt.asIntN(64, (BigInt(atimeHigh) << 32n) | BigInt(atimeLow))\n    const mtime = BigInt.asIntN(64, (BigInt(mtimeHigh) << 32n) | BigInt(mtimeLow))\n',
  ],
  [
    'stat nanoseconds',
    '  const ints = new Uint32Array(18)\n',
    '  const ints = new Uint32Array(22)\n  ints[18] = (stat && stat.atimeNsRem) || 0\n  ints[19] = (stat && stat.mtimeNsRem) || 0\n  ints[20] = (stat && stat.ctimeNsRem) || 0\n  ints[21] = Math.floor(((stat && stat.ino) || 0) / 4294967296)\n',
  ],
  ['fallocate op', "  ['rmdir', {\n    op: binding.op_rmdir\n  }]\n])\n", "  ['rmdir', {\n    op: binding.op_rmdir\n  }],\n  ['fallocate', {\n    op: binding.op_fallocate\n  }]\n])\n"],
  [
    'fallocate handler',
    '  _op_rmdir (signal, path) {\n',
    '  _op_fallocate (signal, path, mode, offsetLow, offsetHigh, lengthLow, lengthHigh) {\n    this.ops.fallocate(path, mode, getDoubleArg(offsetLow, offsetHigh), getDoubleArg(lengthLow, lengthHigh), err => {\n      return signal(err)\n    })\n  }\n\n  _op_rmdir (signal, path) {\n',
  ],
  [
    'listxattr ERANGE',
    '        let ptr = 0\n        for (const name of list) {\n',
    '        let need = 0\n        for (const name of list) need += Buffer.byteLength(name) + 1\n        if (need > listBuf.length) return signal(-34, listBuf.buffer)\n        let ptr = 0\n        for (const name of list) {\n',
  ],
  ['listxattr names as bytes: sizes', 'Buffer.byteLength(name)', "Buffer.byteLength(name, 'latin1')", ALL],
  ['libfuse 3: rename with its flags', '  _op_rename (signal, src, dest) {\n    this.ops.rename(src, dest, err => {', '  _op_rename (signal, src, dest, flags) {\n    this.ops.rename(src, dest, flags, err => {'],
  ['listxattr names as bytes: writes', 'listBuf.write(name, ptr)', "listBuf.write(name, ptr, 'latin1')", ALL],
  [
    'invalidate one path',
    '  // Public API\n\n  mount (cb) {\n',
    '  // Public API\n\n  // mirrorfs: make the kernel drop what it caches for path (attributes, pages); cb(0 or -errno).\n  invalidate (path, cb) {\n    if (!this._thread) return process.nextTick(cb, Fuse.ENOENT)\n    binding.fuse_native_invalidate(this._thread, path, cb)\n  }\n\n  mount (cb) {\n',
  ],
  [
    'utimens times beyond 64-bit nanoseconds, from the thread locals',
    '    const atime = BigInt.asIntN(64, (BigInt(atimeHigh) << 32n) | BigInt(atimeLow))\n    const mtime = BigInt.asIntN(64, (BigInt(mtimeHigh) << 32n) | BigInt(mtimeLow))\n',
    '    let atime = BigInt.asIntN(64, (BigInt(atimeHigh) << 32n) | BigInt(atimeLow))\n    let mtime = BigInt.asIntN(64, (BigInt(mtimeHigh) << 32n) | BigInt(mtimeLow))\n    // mirrorfs: a time 64-bit nanoseconds cannot hold (the sentinel INT64_MAX-2) is read exactly from the thread locals\n    const wide = (i) => BigInt.asIntN(64, (BigInt(this.caller.readUInt32LE(20 + 12 * i)) << 32n) | BigInt(this.caller.readUInt32LE(16 + 12 * i))) * 1000000000n + BigInt(this.caller.readUInt32LE(24 + 12 * i))\n    if (atime === 9223372036854775805n) atime = wide(0)\n    if (mtime === 9223372036854775805n) mtime = wide(1)\n',
  ],
];

/**
 * Apply edits to one file; true when it changed. An edit is done when its fix is
 * there, also as later edits have rewritten it (an empty fix, or an ALL edit:
 * when its bug is gone).
 */
function patch(file, edits) {
  let text = readFileSync(file, 'utf8');
  let changed = false;
  // An edit's fix as the edits after it leave it (each ALL edit everywhere, any other where its bug is in the fix).
  const rewritten = (fix, index) =>
    edits.slice(index + 1).reduce((t, [, bug, to, scope]) => (scope === ALL ? t.replaceAll(bug, to) : t.replace(bug, to)), fix);
  for (const [index, [what, bug, fix, scope]] of edits.entries()) {
    const done = scope === ALL || !fix ? !text.includes(bug) : text.includes(fix) || text.includes(rewritten(fix, index));
    if (done) continue;
    if (!text.includes(bug)) {
      console.error(`patch-fuse-native: cannot apply "${what}": ${file} does not look like fuse-native 2.2.6`);
      process.exit(1);
    }
    text = scope === ALL ? text.replaceAll(bug, fix) : text.replace(bug, fix);
    changed = true;
    console.error(`patch-fuse-native: applied "${what}"`);
  }
  if (changed) writeFileSync(file, text);
  return changed;
}

patch(join(dir, 'index.js'), JS_EDITS);
const gypChanged = patch(join(dir, 'binding.gyp'), GYP_EDITS);
if (patch(source, C_EDITS) || gypChanged) utimesSync(source, new Date(), new Date()); // rebuild below
if (existsSync(addon) && statSync(addon).mtimeMs > statSync(source).mtimeMs) process.exit(0);

const npmDir = dirname(dirname(require.resolve('npm/package.json', { paths: [join(dirname(process.execPath), '../lib/node_modules')] })));
const nodeGyp = join(npmDir, 'npm/node_modules/node-gyp/bin/node-gyp.js');
// Build against the Node headers npm is configured with (no download needed).
let nodedir = process.env.npm_config_nodedir;
if (!nodedir) nodedir = execFileSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
const args = [nodeGyp, 'rebuild', '--loglevel=error', ...(nodedir && nodedir !== 'undefined' ? [`--nodedir=${nodedir}`] : [])];
console.error('patch-fuse-native: rebuilding the fuse-native addon');
execFileSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
