// mirrorfs posix addon: the few file system calls node:fs lacks (see src/store/posix.ts).
// Plain C on Node-API, synchronous but for openTmpfile, linkFd, fallocate and syncfs, no dependencies. Failures throw Errors shaped like
// node:fs errors: message "CODE: description, syscall 'path'", and code, errno
// (negative, as Node gives it), syscall and path properties.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

// Largest integer a JavaScript number holds exactly (2^53).
#define MAX_SAFE 9007199254740992.0

// ---- errors -----------------------------------------------------------------

// errno -> name, and the description libuv (so node:fs) gives it, so that these
// errors read like the ones node:fs throws. EOPNOTSUPP is ENOTSUP's twin on Linux:
// the name the rest of mirrorfs uses is kept.
static const struct {
  int number;
  const char *name;
  const char *description;
} ERRNOS[] = {
  {EPERM, "EPERM", "operation not permitted"},
  {ENOENT, "ENOENT", "no such file or directory"},
  {EINTR, "EINTR", "interrupted system call"},
  {EIO, "EIO", "i/o error"},
  {ENXIO, "ENXIO", "no such device or address"},
  {E2BIG, "E2BIG", "argument list too long"},
  {EBADF, "EBADF", "bad file descriptor"},
  {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
  {ENOMEM, "ENOMEM", "not enough memory"},
  {EACCES, "EACCES", "permission denied"},
  {EFAULT, "EFAULT", "bad address in system call argument"},
  {EBUSY, "EBUSY", "resource busy or locked"},
  {EEXIST, "EEXIST", "file already exists"},
  {EXDEV, "EXDEV", "cross-device link not permitted"},
  {ENODEV, "ENODEV", "no such device"},
  {ENOTDIR, "ENOTDIR", "not a directory"},
  {EISDIR, "EISDIR", "illegal operation on a directory"},
  {EINVAL, "EINVAL", "invalid argument"},
  {ENFILE, "ENFILE", "file table overflow"},
  {EMFILE, "EMFILE", "too many open files"},
  {ETXTBSY, "ETXTBSY", "text file is busy"},
  {EFBIG, "EFBIG", "file too large"},
  {ENOSPC, "ENOSPC", "no space left on device"},
  {ESPIPE, "ESPIPE", "invalid seek"},
  {EROFS, "EROFS", "read-only file system"},
  {EMLINK, "EMLINK", "too many links"},
  {ERANGE, "ERANGE", "result too large"},
  {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
  {ENOSYS, "ENOSYS", "function not implemented"},
  {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
  {ELOOP, "ELOOP", "too many symbolic links encountered"},
  {ENODATA, "ENODATA", "no data available"},
  {EOVERFLOW, "EOVERFLOW", "value too large for defined data type"},
  {EILSEQ, "EILSEQ", "illegal byte sequence"},
  {EOPNOTSUPP, "EOPNOTSUPP", "operation not supported"},
  {EDQUOT, "EDQUOT", "disk quota exceeded"},
};

// Throw the node:fs-shaped error for `err` from `syscall` on `path` (length `path_len`,
// may hold any bytes; NULL for calls on a descriptor) and `dest` (renames only, or NULL).
static napi_value make_errno_error(napi_env env, int err, const char *syscall, const char *path, size_t path_len,
                                   const char *dest, size_t dest_len) {
  const char *name = "UNKNOWN";
  const char *description = strerror(err);
  for (size_t i = 0; i < sizeof ERRNOS / sizeof ERRNOS[0]; i++) {
    if (ERRNOS[i].number == err) {
      name = ERRNOS[i].name;
      description = ERRNOS[i].description;
      break;
    }
  }
  // The message is assembled by length: a rejected path may contain a NUL byte.
  size_t cap = strlen(name) + strlen(description) + strlen(syscall) + path_len + dest_len + 16;
  char *message = malloc(cap);
  if (!message) {
    napi_value fallback, fallback_message;
    napi_create_string_utf8(env, "out of memory", NAPI_AUTO_LENGTH, &fallback_message);
    napi_create_error(env, NULL, fallback_message, &fallback);
    return fallback;
  }
  size_t len = 0;
#define APPEND(bytes, n) (memcpy(message + len, (bytes), (n)), len += (n))
#define APPEND_STR(s) APPEND((s), strlen(s))
  APPEND_STR(name);
  APPEND_STR(": ");
  APPEND_STR(description);
  APPEND_STR(", ");
  APPEND_STR(syscall);
  if (path) {
    APPEND_STR(" '");
    APPEND(path, path_len);
    APPEND_STR("'");
  }
  if (dest) {
    APPEND_STR(" -> '");
    APPEND(dest, dest_len);
    APPEND_STR("'");
  }
#undef APPEND
#undef APPEND_STR

  napi_value js_message, js_code, js_errno, js_syscall, error;
  napi_create_string_utf8(env, message, len, &js_message);
  free(message);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &js_code);
  napi_create_int32(env, -err, &js_errno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall);
  napi_create_error(env, NULL, js_message, &error);
  napi_set_named_property(env, error, "errno", js_errno);
  napi_set_named_property(env, error, "code", js_code);
  napi_set_named_property(env, error, "syscall", js_syscall);
  // Like node:fs, path and dest are strings (a Buffer path decoded as UTF-8, invalid bytes as U+FFFD).
  if (path) {
    napi_value js_path;
    napi_create_string_utf8(env, path, path_len, &js_path);
    napi_set_named_property(env, error, "path", js_path);
  }
  if (dest) {
    napi_value js_dest;
    napi_create_string_utf8(env, dest, dest_len, &js_dest);
    napi_set_named_property(env, error, "dest", js_dest);
  }
  return error;
}

static void throw_errno(napi_env env, int err, const char *syscall, const char *path, size_t path_len,
                        const char *dest, size_t dest_len) {
  napi_throw(env, make_errno_error(env, err, syscall, path, path_len, dest, dest_len));
}

// ---- arguments --------------------------------------------------------------

// A path argument: a string (encoded as UTF-8) or a Buffer (its bytes as they are),
// copied NUL-terminated into `bytes` (malloc'ed; release with free_path).
typedef struct {
  char *bytes;
  size_t len;
} path_arg;

static void free_path(path_arg *p) {
  free(p->bytes);
  p->bytes = NULL;
}

// Read a path; false (with a pending exception) when it is not one or holds a NUL byte.
static bool get_path(napi_env env, napi_value value, const char *what, const char *syscall, path_arg *out) {
  out->bytes = NULL;
  out->len = 0;
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    void *data;
    size_t len;
    napi_get_buffer_info(env, value, &data, &len);
    out->bytes = malloc(len + 1);
    if (!out->bytes) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return false;
    }
    if (len) memcpy(out->bytes, data, len);
    out->bytes[len] = '\0';
    out->len = len;
  } else {
    napi_valuetype type;
    napi_typeof(env, value, &type);
    if (type != napi_string) {
      char message[128];
      snprintf(message, sizeof message, "%s: %s must be a string or a Buffer", syscall, what);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
      return false;
    }
    size_t len;
    napi_get_value_string_utf8(env, value, NULL, 0, &len);
    out->bytes = malloc(len + 1);
    if (!out->bytes) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return false;
    }
    napi_get_value_string_utf8(env, value, out->bytes, len + 1, &out->len);
  }
  // The kernel would stop at a NUL and act on a different name: refuse it.
  if (memchr(out->bytes, '\0', out->len)) {
    throw_errno(env, EINVAL, syscall, out->bytes, out->len, NULL, 0);
    free_path(out);
    return false;
  }
  return true;
}

// Read an integer number within [min, max] (both within +-2^53); false with a pending exception otherwise.
static bool get_integer(napi_env env, napi_value value, const char *what, const char *syscall, double min, double max,
                        int64_t *out) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  char message[160];
  if (type != napi_number) {
    snprintf(message, sizeof message, "%s: %s must be a number", syscall, what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  double d;
  napi_get_value_double(env, value, &d);
  if (!isfinite(d) || floor(d) != d || d < min || d > max) {
    snprintf(message, sizeof message, "%s: %s must be an integer from %.0f to %.0f (got %g)", syscall, what, min, max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool get_bool(napi_env env, napi_value value) {
  bool result = false;
  napi_value coerced;
  if (napi_coerce_to_bool(env, value, &coerced) == napi_ok) napi_get_value_bool(env, coerced, &result);
  return result;
}

// Fetch exactly `n` arguments into argv; false (with a pending TypeError) when fewer were given.
static bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *syscall) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < n) {
    char message[96];
    snprintf(message, sizeof message, "%s expects %zu arguments, got %zu", syscall, n, argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", message);
    return false;
  }
  return true;
}

// ---- the calls --------------------------------------------------------------

// mknod(path, mode, rdev): mode carries the type bits (S_IFIFO, S_IFSOCK, S_IFCHR,
// S_IFBLK, S_IFREG) and the permission bits (the umask applies); rdev is a dev_t.
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t mode, rdev;
  path_arg path;
  if (!get_args(env, info, 3, argv, "mknod")) return NULL;
  if (!get_integer(env, argv[1], "mode", "mknod", 0, 4294967295.0, &mode)) return NULL;
  if (!get_integer(env, argv[2], "rdev", "mknod", 0, MAX_SAFE, &rdev)) return NULL;
  if (!get_path(env, argv[0], "path", "mknod", &path)) return NULL;
  if (mknod(path.bytes, (mode_t)mode, (dev_t)rdev) != 0) throw_errno(env, errno, "mknod", path.bytes, path.len, NULL, 0);
  free_path(&path);
  return NULL;
}

// One time for utimensat: nsec -1 is UTIME_NOW, -2 UTIME_OMIT (sec then ignored).
static bool get_timespec(napi_env env, napi_value sec, napi_value nsec, const char *which, struct timespec *out) {
  char what[16];
  int64_t s = 0, ns;
  snprintf(what, sizeof what, "%sNsec", which);
  if (!get_integer(env, nsec, what, "utimensat", -2, 999999999, &ns)) return false;
  if (ns == -1 || ns == -2) {
    out->tv_sec = 0;
    out->tv_nsec = ns == -1 ? UTIME_NOW : UTIME_OMIT;
    return true;
  }
  snprintf(what, sizeof what, "%sSec", which);
  if (!get_integer(env, sec, what, "utimensat", -MAX_SAFE, MAX_SAFE, &s)) return false;
  out->tv_sec = (time_t)s;
  out->tv_nsec = (long)ns;
  return true;
}

// utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, noFollow)
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  struct timespec times[2];
  path_arg path;
  if (!get_args(env, info, 6, argv, "utimensat")) return NULL;
  if (!get_timespec(env, argv[1], argv[2], "atime", &times[0])) return NULL;
  if (!get_timespec(env, argv[3], argv[4], "mtime", &times[1])) return NULL;
  int flags = get_bool(env, argv[5]) ? AT_SYMLINK_NOFOLLOW : 0;
  if (!get_path(env, argv[0], "path", "utimensat", &path)) return NULL;
  if (utimensat(AT_FDCWD, path.bytes, times, flags) != 0) throw_errno(env, errno, "utimensat", path.bytes, path.len, NULL, 0);
  free_path(&path);
  return NULL;
}

// renameat2(from, to, flags): the raw system call, whether or not the C library
// declares a wrapper (glibc does from 2.28, in <stdio.h>). RENAME_NOREPLACE = 1,
// RENAME_EXCHANGE = 2.
static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t flags;
  path_arg from, to;
  if (!get_args(env, info, 3, argv, "renameat2")) return NULL;
  if (!get_integer(env, argv[2], "flags", "renameat2", 0, 4294967295.0, &flags)) return NULL;
  if (!get_path(env, argv[0], "from", "renameat2", &from)) return NULL;
  if (!get_path(env, argv[1], "to", "renameat2", &to)) {
    free_path(&from);
    return NULL;
  }
  if (syscall(SYS_renameat2, AT_FDCWD, from.bytes, AT_FDCWD, to.bytes, (unsigned int)flags) != 0) {
    throw_errno(env, errno, "renameat2", from.bytes, from.len, to.bytes, to.len);
  }
  free_path(&from);
  free_path(&to);
  return NULL;
}

// openTmpfile(dir, mode) and linkFd(fd, path), both Promises, run on libuv's thread pool
// (both wait on the file system's journal when the disk is busy, as a create does):
// - openTmpfile: open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode), an unnamed regular
//   file in dir's file system, resolved with its descriptor;
// - linkFd: give the file open as fd that name, through /proc/self/fd with
//   AT_SYMLINK_FOLLOW, or with AT_EMPTY_PATH where /proc is missing (that needs
//   CAP_DAC_READ_SEARCH, which a peer running as root has); EEXIST when path
//   exists, as link(2).
// Together they make a new file appear under its name only once it is complete (owner,
// mode): a crash before the link leaves nothing behind. Rejected with node:fs-shaped errors.
typedef enum { JOB_OPEN_TMPFILE, JOB_LINK_FD, JOB_FALLOCATE, JOB_SYNCFS } file_job_kind;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  file_job_kind kind;
  path_arg path;
  int64_t number; // mode (openTmpfile) or fd (linkFd, fallocate)
  int64_t mode, offset, length; // fallocate
  int result;     // the descriptor (openTmpfile) or 0
  int err;
} file_job;

static void file_job_execute(napi_env env, void *data) {
  (void)env;
  file_job *job = data;
  if (job->kind == JOB_OPEN_TMPFILE) {
    int fd;
    do fd = open(job->path.bytes, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)job->number);
    while (fd < 0 && errno == EINTR);
    job->result = fd;
    job->err = fd < 0 ? errno : 0;
  } else if (job->kind == JOB_SYNCFS) {
    job->err = syncfs((int)job->number) == 0 ? 0 : errno;
  } else if (job->kind == JOB_FALLOCATE) {
    int rc;
    do rc = fallocate((int)job->number, (int)job->mode, (off_t)job->offset, (off_t)job->length);
    while (rc != 0 && errno == EINTR);
    job->err = rc == 0 ? 0 : errno;
  } else {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)job->number);
    job->err = linkat(AT_FDCWD, proc, AT_FDCWD, job->path.bytes, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    if (job->err == ENOENT && access("/proc/self/fd", F_OK) != 0) {
      job->err = linkat((int)job->number, "", AT_FDCWD, job->path.bytes, AT_EMPTY_PATH) == 0 ? 0 : errno;
    }
  }
}

static void file_job_complete(napi_env env, napi_status status, void *data) {
  file_job *job = data;
  const char *syscall = job->kind == JOB_OPEN_TMPFILE ? "open" : job->kind == JOB_LINK_FD ? "linkat" : job->kind == JOB_SYNCFS ? "syncfs" : "fallocate";
  int err = status == napi_ok ? job->err : ECANCELED;
  // A descriptor opened for a job that is then cancelled is nobody's: close it.
  if (status != napi_ok && job->kind == JOB_OPEN_TMPFILE && job->err == 0 && job->result >= 0) close(job->result);
  napi_value value;
  if (err != 0) {
    // fallocate and syncfs work on a descriptor: their errors name no path, as node:fs's do not.
    napi_reject_deferred(env, job->deferred, make_errno_error(env, err, syscall, job->path.bytes, job->path.len, NULL, 0));
  } else {
    if (job->kind == JOB_OPEN_TMPFILE) napi_create_int32(env, job->result, &value);
    else napi_get_undefined(env, &value);
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free_path(&job->path);
  free(job);
}

// Queue a job; path_value may be NULL (fallocate: no path). `extra` is copied into the job.
static napi_value queue_file_job(napi_env env, file_job_kind kind, napi_value path_value, const char *what,
                                 const char *syscall, int64_t number, const file_job *extra) {
  file_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (path_value && !get_path(env, path_value, what, syscall, &job->path)) {
    free(job);
    return NULL;
  }
  job->kind = kind;
  job->number = number;
  if (extra) {
    job->mode = extra->mode;
    job->offset = extra->offset;
    job->length = extra->length;
  }
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, kind == JOB_OPEN_TMPFILE ? "mirrorfs.openTmpfile" : kind == JOB_LINK_FD ? "mirrorfs.linkFd" : kind == JOB_SYNCFS ? "mirrorfs.syncfs" : "mirrorfs.fallocate", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, file_job_execute, file_job_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_value reason, message;
    napi_create_string_utf8(env, "cannot queue work on the thread pool", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &reason);
    napi_reject_deferred(env, job->deferred, reason);
    if (job->work) napi_delete_async_work(env, job->work);
    free_path(&job->path);
    free(job);
  }
  return promise;
}

static napi_value js_open_tmpfile(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t mode;
  if (!get_args(env, info, 2, argv, "open")) return NULL;
  if (!get_integer(env, argv[1], "mode", "open", 0, 07777, &mode)) return NULL;
  return queue_file_job(env, JOB_OPEN_TMPFILE, argv[0], "dir", "open", mode, NULL);
}

static napi_value js_link_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd;
  if (!get_args(env, info, 2, argv, "linkat")) return NULL;
  if (!get_integer(env, argv[0], "fd", "linkat", 0, 2147483647.0, &fd)) return NULL;
  return queue_file_job(env, JOB_LINK_FD, argv[1], "path", "linkat", fd, NULL);
}

// fallocate(fd, mode, offset, length): a Promise, on the thread pool (reserving or
// zeroing a large range can take long, and the peer serves other changes meanwhile).
static napi_value js_fallocate(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t fd;
  file_job extra = {0};
  if (!get_args(env, info, 4, argv, "fallocate")) return NULL;
  if (!get_integer(env, argv[0], "fd", "fallocate", 0, 2147483647.0, &fd)) return NULL;
  if (!get_integer(env, argv[1], "mode", "fallocate", 0, 2147483647.0, &extra.mode)) return NULL;
  if (!get_integer(env, argv[2], "offset", "fallocate", 0, MAX_SAFE, &extra.offset)) return NULL;
  if (!get_integer(env, argv[3], "length", "fallocate", 0, MAX_SAFE, &extra.length)) return NULL;
  return queue_file_job(env, JOB_FALLOCATE, NULL, NULL, "fallocate", fd, &extra);
}

// syncfs(fd): a Promise, on the thread pool. Writes out everything dirty on the file
// system that holds fd (data, metadata, the journal) in one call: how a peer makes what
// it has applied durable in the background, and what an fsync through the mount waits for.
static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t fd;
  if (!get_args(env, info, 1, argv, "syncfs")) return NULL;
  if (!get_integer(env, argv[0], "fd", "syncfs", 0, 2147483647.0, &fd)) return NULL;
  return queue_file_job(env, JOB_SYNCFS, NULL, NULL, "syncfs", fd, NULL);
}

// realtimeCoarseNs(): CLOCK_REALTIME_COARSE in nanoseconds, as a BigInt. The clock the
// kernel stamps file times with (current_time()), which lags the precise clock by up
// to a tick: a "now" taken from it is never later than the ctime the change then gets.
static napi_value js_realtime_coarse_ns(napi_env env, napi_callback_info info) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  napi_value out;
  napi_create_bigint_int64(env, (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, &out);
  return out;
}

// ---- extended attributes ----------------------------------------------------
// The l* calls: an xattr of a symlink is the link's own, never its target's. Names,
// like paths, are strings (UTF-8) or Buffers (any bytes): names are bytes on Linux.

// Read a path and an xattr name; false (with a pending exception, nothing left allocated) otherwise.
static bool get_path_and_name(napi_env env, napi_value *argv, const char *syscall, path_arg *path, path_arg *name) {
  if (!get_path(env, argv[0], "path", syscall, path)) return false;
  if (!get_path(env, argv[1], "name", syscall, name)) {
    free_path(path);
    return false;
  }
  return true;
}

// lgetxattr(path, name) -> Buffer. The value may grow between asking its size and
// reading it (ERANGE): asked again, a bounded number of times.
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  path_arg path, name;
  if (!get_args(env, info, 2, argv, "lgetxattr")) return NULL;
  if (!get_path_and_name(env, argv, "lgetxattr", &path, &name)) return NULL;
  napi_value result = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = lgetxattr(path.bytes, name.bytes, NULL, 0);
    if (size < 0) break;
    void *data = NULL;
    napi_value buffer;
    if (napi_create_buffer(env, (size_t)size, &data, &buffer) != napi_ok) {
      errno = ENOMEM;
      break;
    }
    if (size == 0) {  // an empty value: nothing to read
      result = buffer;
      break;
    }
    ssize_t got = lgetxattr(path.bytes, name.bytes, data, (size_t)size);
    if (got < 0 && errno == ERANGE) continue;
    if (got < 0) break;
    if ((size_t)got == (size_t)size) {
      result = buffer;
    } else {
      napi_value shorter;
      void *copy;
      if (napi_create_buffer_copy(env, (size_t)got, data, &copy, &shorter) != napi_ok) {
        errno = ENOMEM;
        break;
      }
      result = shorter;
    }
    break;
  }
  if (!result) throw_errno(env, errno ? errno : ERANGE, "lgetxattr", path.bytes, path.len, NULL, 0);
  free_path(&path);
  free_path(&name);
  return result;
}

// lsetxattr(path, name, value, flags): flags XATTR_CREATE = 1, XATTR_REPLACE = 2.
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  path_arg path, name;
  int64_t flags;
  bool is_buffer = false;
  if (!get_args(env, info, 4, argv, "lsetxattr")) return NULL;
  napi_is_buffer(env, argv[2], &is_buffer);
  if (!is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lsetxattr: value must be a Buffer");
    return NULL;
  }
  if (!get_integer(env, argv[3], "flags", "lsetxattr", 0, 3, &flags)) return NULL;
  void *value;
  size_t value_len;
  napi_get_buffer_info(env, argv[2], &value, &value_len);
  if (!get_path_and_name(env, argv, "lsetxattr", &path, &name)) return NULL;
  if (lsetxattr(path.bytes, name.bytes, value, value_len, (int)flags) != 0) throw_errno(env, errno, "lsetxattr", path.bytes, path.len, NULL, 0);
  free_path(&path);
  free_path(&name);
  return NULL;
}

// An 8-byte little-endian xattr (the mirror's inode numbers: src/store/inode-ids.ts) of a
// path (never a symlink's target) or of an open descriptor: the target is a string or
// Buffer (a path) or a number (a descriptor). getU64Xattr(target, name) -> BigInt, or null
// when the entry has none (ENODATA, or a value of another size) or its file system keeps
// none (ENOTSUP); setU64Xattr(target, name, BigInt).
static bool get_target(napi_env env, napi_value value, const char *syscall, int *fd, path_arg *path) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  path->bytes = NULL;
  path->len = 0;
  if (type == napi_number) {
    int64_t n;
    if (!get_integer(env, value, "fd", syscall, 0, 2147483647.0, &n)) return false;
    *fd = (int)n;
    return true;
  }
  *fd = -1;
  return get_path(env, value, "path", syscall, path);
}

// A target and an xattr name; false (with a pending exception, nothing left allocated) otherwise.
static bool get_target_and_name(napi_env env, napi_value *argv, const char *syscall, int *fd, path_arg *path, path_arg *name) {
  if (!get_target(env, argv[0], syscall, fd, path)) return false;
  if (!get_path(env, argv[1], "name", syscall, name)) {
    free_path(path);
    return false;
  }
  return true;
}

static napi_value js_get_u64_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  path_arg path, name;
  int fd;
  if (!get_args(env, info, 2, argv, "getxattr")) return NULL;
  if (!get_target_and_name(env, argv, "getxattr", &fd, &path, &name)) return NULL;
  unsigned char bytes[8];
  ssize_t got = fd >= 0 ? fgetxattr(fd, name.bytes, bytes, sizeof bytes) : lgetxattr(path.bytes, name.bytes, bytes, sizeof bytes);
  napi_value result = NULL;
  if (got == (ssize_t)sizeof bytes) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | bytes[i];
    napi_create_bigint_uint64(env, v, &result);
  } else if (got >= 0 || errno == ENODATA || errno == ERANGE || errno == ENOTSUP) {
    napi_get_null(env, &result);
  } else {
    throw_errno(env, errno, fd >= 0 ? "fgetxattr" : "lgetxattr", path.bytes, path.len, NULL, 0);
  }
  free_path(&path);
  free_path(&name);
  return result;
}

static napi_value js_set_u64_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  path_arg path, name;
  int fd;
  uint64_t v;
  bool lossless;
  if (!get_args(env, info, 3, argv, "setxattr")) return NULL;
  if (napi_get_value_bigint_uint64(env, argv[2], &v, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setxattr: value must be a BigInt from 0 to 2^64-1");
    return NULL;
  }
  if (!get_target_and_name(env, argv, "setxattr", &fd, &path, &name)) return NULL;
  unsigned char bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(v >> (8 * i));
  int rc = fd >= 0 ? fsetxattr(fd, name.bytes, bytes, sizeof bytes, 0) : lsetxattr(path.bytes, name.bytes, bytes, sizeof bytes, 0);
  if (rc != 0) throw_errno(env, errno, fd >= 0 ? "fsetxattr" : "lsetxattr", path.bytes, path.len, NULL, 0);
  free_path(&path);
  free_path(&name);
  return NULL;
}

// llistxattr(path) -> Buffer: the names, each ended by a NUL byte, as the kernel lists them.
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  path_arg path;
  if (!get_args(env, info, 1, argv, "llistxattr")) return NULL;
  if (!get_path(env, argv[0], "path", "llistxattr", &path)) return NULL;
  napi_value result = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = llistxattr(path.bytes, NULL, 0);
    if (size < 0) break;
    if (size == 0) {  // no names: a size of 0 would only ask the size again
      void *none;
      if (napi_create_buffer(env, 0, &none, &result) != napi_ok) result = NULL;
      break;
    }
    char *list = malloc((size_t)size);
    if (!list) {
      errno = ENOMEM;
      break;
    }
    ssize_t got = llistxattr(path.bytes, list, (size_t)size);
    if (got < 0) {
      int saved = errno;
      free(list);
      errno = saved;
      if (errno == ERANGE) continue;
      break;
    }
    void *copy;
    if (napi_create_buffer_copy(env, (size_t)got, list, &copy, &result) != napi_ok) {
      result = NULL;
      errno = ENOMEM;
    }
    free(list);
    break;
  }
  if (!result) throw_errno(env, errno ? errno : ERANGE, "llistxattr", path.bytes, path.len, NULL, 0);
  free_path(&path);
  return result;
}

// lremovexattr(path, name)
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  path_arg path, name;
  if (!get_args(env, info, 2, argv, "lremovexattr")) return NULL;
  if (!get_path_and_name(env, argv, "lremovexattr", &path, &name)) return NULL;
  if (lremovexattr(path.bytes, name.bytes) != 0) throw_errno(env, errno, "lremovexattr", path.bytes, path.len, NULL, 0);
  free_path(&path);
  free_path(&name);
  return NULL;
}

// ---- module -----------------------------------------------------------------

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimensat", NULL, js_utimensat, NULL, NULL, NULL, napi_enumerable, NULL},
      {"renameat2", NULL, js_renameat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fallocate", NULL, js_fallocate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"realtimeCoarseNs", NULL, js_realtime_coarse_ns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openTmpfile", NULL, js_open_tmpfile, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linkFd", NULL, js_link_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getU64Xattr", NULL, js_get_u64_xattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setU64Xattr", NULL, js_set_u64_xattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  return exports;
}
