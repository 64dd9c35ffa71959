#!/usr/bin/python3
"""POSIX step driver for the conformance tests (test/helpers/posix.ts).

Usage: /usr/bin/python3 -I posix-driver.py BASE_DIR < steps.json > results.json

Reads a JSON array of steps from stdin, runs them in order with the working
directory BASE_DIR (every path in a step is relative to it, or absolute), and
prints one JSON array of results, one per step:

    {"ok": true, "value": ...}   the call succeeded (value may be null)
    {"errno": "EACCES"}          the call failed with this errno
    {"error": "..."}             the step itself was malformed (a harness bug)

One step's failure never stops the run. The driver runs as whatever user
started it (posix.ts uses setpriv for unprivileged users): it must need
nothing but the standard library of Debian's /usr/bin/python3.

Paths: any path argument ("path", "src", "dst", "target") may be given as
"<key>_b64" instead: base64 of the raw bytes of the name, for names that are
not UTF-8.

Deliberately no sleep: tests synchronise on results, never on time.
"""

import base64
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import mmap
import os
import select
import socket
import stat
import subprocess
import sys
import time

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
XATTR_CREATE = 1
XATTR_REPLACE = 2

def load_libc():
    # glibc's soname first: ctypes.util.find_library runs ldconfig (~40 ms a driver run)
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


libc = load_libc()


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]
libc.utimensat.restype = ctypes.c_int
libc.access.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.access.restype = ctypes.c_int
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
libc.fallocate.restype = ctypes.c_int
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
libc.linkat.restype = ctypes.c_int
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
libc.renameat2.restype = ctypes.c_int

CLOCK_REALTIME_COARSE = 5  # Linux; the clock file systems stamp times with
RENAME_FLAGS = {"noreplace": 1, "exchange": 2}  # RENAME_NOREPLACE, RENAME_EXCHANGE
# Bounds for the steps that wait on other processes: a step never hangs the run.
CHILD_DEADLINE_S = 20
for _fn in ("getxattr", "lgetxattr"):
    getattr(libc, _fn).argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    getattr(libc, _fn).restype = ctypes.c_ssize_t
for _fn in ("listxattr", "llistxattr"):
    getattr(libc, _fn).argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    getattr(libc, _fn).restype = ctypes.c_ssize_t


class StepError(Exception):
    """A malformed step: reported as {"error": ...}, never as an errno."""


def path_of(step, key="path"):
    if key + "_b64" in step:
        return base64.b64decode(step[key + "_b64"])
    if key not in step:
        raise StepError("missing %r" % key)
    return os.fsencode(step[key])


def name_of(raw):
    """A file name as JSON: a string when it is UTF-8, else {"b64": ...}."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def raise_errno():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))


def pattern(n):
    """n bytes of a repeating, recognisable pattern (value_len of setxattr)."""
    unit = bytes(range(32, 127))
    return (unit * (n // len(unit) + 1))[:n]


def time_arg(v):
    if v == "now":
        return Timespec(0, UTIME_NOW)
    if v == "omit":
        return Timespec(0, UTIME_OMIT)
    if isinstance(v, str) and v.lstrip("-").isdigit():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return Timespec(v // 1_000_000_000, v % 1_000_000_000)
    raise StepError("a time is ns (an integer or a decimal string), \"now\" or \"omit\", not %r" % (v,))


TYPES = [
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "chr"),
    (stat.S_ISBLK, "blk"),
]


def type_of(mode):
    for test, name in TYPES:
        if test(mode):
            return name
    return "unknown"


def stat_value(st):
    t = type_of(st.st_mode)
    return {
        "type": t,
        "mode": st.st_mode & 0o7777,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": 0 if t == "dir" else st.st_size,
        "nlink": st.st_nlink,
        "ino": st.st_ino,
        "rdev_major": os.major(st.st_rdev),
        "rdev_minor": os.minor(st.st_rdev),
        # as decimal strings: nanoseconds since 1970 do not fit a double exactly
        "atime_ns": str(st.st_atime_ns),
        "mtime_ns": str(st.st_mtime_ns),
        "ctime_ns": str(st.st_ctime_ns),
    }


OPEN_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY,
    "rw": os.O_RDWR,
    "wa": os.O_WRONLY | os.O_APPEND,
    "wt": os.O_WRONLY | os.O_TRUNC,
}

ACCESS_MODES = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK, "f": os.F_OK}

XATTR_FLAGS = {None: 0, "create": os.XATTR_CREATE, "replace": os.XATTR_REPLACE}


def op_mkdir(s):
    os.mkdir(path_of(s), s.get("mode", 0o777))


def op_create(s):
    os.close(os.open(path_of(s), os.O_CREAT | os.O_EXCL | os.O_WRONLY, s.get("mode", 0o666)))


def op_open(s):
    flags = s.get("flags", "r")
    if flags not in OPEN_FLAGS:
        raise StepError("unknown open flags %r" % (flags,))
    os.close(os.open(path_of(s), OPEN_FLAGS[flags]))


def op_write(s):
    """"data" (UTF-8), or "data_len" bytes of the recognisable pattern (no NUL)."""
    data = pattern(s["data_len"]) if "data_len" in s else s.get("data", "").encode("utf-8")
    flags = os.O_WRONLY | (os.O_APPEND if s.get("append") else 0)
    fd = os.open(path_of(s), flags)
    try:
        if s.get("offset") is not None:
            return os.pwrite(fd, data, s["offset"])
        return os.write(fd, data)
    finally:
        os.close(fd)


def op_read(s):
    fd = os.open(path_of(s), os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace")


def op_truncate(s):
    os.truncate(path_of(s), s["size"])


def op_chmod(s):
    os.chmod(path_of(s), s["mode"])


def op_chown(s):
    os.chown(path_of(s), s.get("uid", -1), s.get("gid", -1))


def op_lchown(s):
    os.lchown(path_of(s), s.get("uid", -1), s.get("gid", -1))


def op_utime(s):
    times = (Timespec * 2)(time_arg(s.get("atime_ns", "now")), time_arg(s.get("mtime_ns", "now")))
    flags = AT_SYMLINK_NOFOLLOW if s.get("nofollow") else 0
    if libc.utimensat(AT_FDCWD, path_of(s), times, flags) != 0:
        raise_errno()


def op_unlink(s):
    os.unlink(path_of(s))


def op_rmdir(s):
    os.rmdir(path_of(s))


def op_rename(s):
    os.rename(path_of(s, "src"), path_of(s, "dst"))


def op_link(s):
    # link(2) does not follow a symlink given as the source.
    os.link(path_of(s, "src"), path_of(s, "dst"), follow_symlinks=False)


def op_symlink(s):
    os.symlink(path_of(s, "target"), path_of(s))


def op_readlink(s):
    return name_of(os.readlink(path_of(s)))


def op_mknod(s):
    os.mknod(path_of(s), s["mode"], os.makedev(s.get("major", 0), s.get("minor", 0)))


def op_mkfifo(s):
    os.mkfifo(path_of(s), s.get("mode", 0o666))


def op_bindsocket(s):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path_of(s))
    finally:
        sock.close()  # the socket file stays


def op_access(s):
    mode = s.get("mode", "f")
    bits = 0
    for c in mode:
        if c not in ACCESS_MODES:
            raise StepError("unknown access mode %r" % (mode,))
        bits |= ACCESS_MODES[c]
    # os.access answers with a bool: ask the syscall itself, for its errno.
    if libc.access(path_of(s), bits) != 0:
        raise_errno()


def op_exec(s):
    p = path_of(s)
    if not p.startswith(b"/"):
        p = b"./" + p
    # Bounded: a test must never hang on a program it runs.
    r = subprocess.run([p], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    return r.returncode


def op_stat(s):
    """With "blocks": true also st_blocks (512-byte units), e.g. after fallocate."""
    st = os.stat(path_of(s))
    return with_blocks(stat_value(st), st, s)


def op_lstat(s):
    st = os.lstat(path_of(s))
    return with_blocks(stat_value(st), st, s)


def with_blocks(v, st, s):
    if s.get("blocks"):
        v["blocks"] = st.st_blocks
    return v


def op_getxattr(s):
    p = path_of(s)
    name = os.fsencode(s["name"])
    if s.get("size") is None:
        return base64.b64encode(os.getxattr(p, name, follow_symlinks=s.get("follow", False))).decode("ascii")
    size = s["size"]
    fn = libc.getxattr if s.get("follow", True) else libc.lgetxattr
    buf = ctypes.create_string_buffer(max(size, 1))
    n = fn(p, name, buf if size > 0 else None, size)
    if n < 0:
        raise_errno()
    if size == 0:
        return n
    return base64.b64encode(buf.raw[:n]).decode("ascii")


def op_setxattr(s):
    if "value_len" in s:
        value = pattern(s["value_len"])
    else:
        value = base64.b64decode(s.get("value", ""))
    flags = s.get("flags")
    if flags not in XATTR_FLAGS:
        raise StepError("unknown setxattr flags %r" % (flags,))
    os.setxattr(path_of(s), os.fsencode(s["name"]), value, XATTR_FLAGS[flags], follow_symlinks=s.get("follow", True))


def op_listxattr(s):
    p = path_of(s)
    if s.get("size") is None:
        return sorted(os.listxattr(p, follow_symlinks=s.get("follow", True)))
    size = s["size"]
    fn = libc.listxattr if s.get("follow", True) else libc.llistxattr
    buf = ctypes.create_string_buffer(max(size, 1))
    n = fn(p, buf if size > 0 else None, size)
    if n < 0:
        raise_errno()
    return n


def op_removexattr(s):
    os.removexattr(path_of(s), os.fsencode(s["name"]), follow_symlinks=s.get("follow", True))


def op_listdir(s):
    return [name_of(n) for n in sorted(os.listdir(path_of(s)))]


def op_umask(s):
    """Set the driver's umask for the following steps (it starts at 022)."""
    return os.umask(s["mask"])


def errno_name(e):
    return errno.errorcode.get(e, str(e))


def op_tick(s):
    """Wait (bounded, no sleep: at most one clock tick, a few ms) until the
    coarse clock, which file systems stamp times with, has passed the precise
    clock as it was at the start: every time stamped after this step is later
    than every time stamped before it, so "changed" is a real relation even
    when two steps fall into one tick."""
    start = time.clock_gettime_ns(time.CLOCK_REALTIME)
    deadline = time.monotonic() + 1
    while time.clock_gettime_ns(CLOCK_REALTIME_COARSE) <= start:
        if time.monotonic() > deadline:
            raise StepError("the coarse clock did not advance within 1 s")


def op_digest(s):
    """A file's size, SHA-256 and a map of its 4 KiB blocks as runs: "d" data,
    "z" all zero bytes (a hole or zeroed range reads as zeros), e.g. "d2 z1 d1"."""
    block = s.get("block", 4096)
    h = hashlib.sha256()
    runs = []
    size = 0
    with open(path_of(s), "rb") as f:
        while True:
            b = f.read(block)
            if not b:
                break
            size += len(b)
            h.update(b)
            kind = "z" if b.count(0) == len(b) else "d"
            if runs and runs[-1][0] == kind:
                runs[-1][1] += 1
            else:
                runs.append([kind, 1])
    return {"size": size, "sha256": h.hexdigest(), "map": " ".join("%s%d" % (k, n) for k, n in runs)}


FALLOC_MODES = {"keep_size": 0x01, "punch_hole": 0x02, "collapse_range": 0x08, "zero_range": 0x10, "insert_range": 0x20}


def op_fallocate(s):
    """fallocate(2) on the file opened O_RDWR: "mode" a number, or a list of
    names (keep_size, punch_hole, collapse_range, zero_range, insert_range)."""
    mode = s.get("mode", 0)
    if isinstance(mode, list):
        bits = 0
        for m in mode:
            if m not in FALLOC_MODES:
                raise StepError("unknown fallocate mode %r" % (m,))
            bits |= FALLOC_MODES[m]
        mode = bits
    fd = os.open(path_of(s), os.O_RDWR)
    try:
        if libc.fallocate(fd, mode, s["offset"], s["length"]) != 0:
            raise_errno()
    finally:
        os.close(fd)


def op_copyrange(s):
    """copy_file_range(2) of "length" bytes from src (at src_offset) to dst (at
    dst_offset), looping over short copies; the bytes copied."""
    fin = os.open(path_of(s, "src"), os.O_RDONLY)
    try:
        fout = os.open(path_of(s, "dst"), os.O_WRONLY)
        try:
            left, done = s["length"], 0
            src_off, dst_off = s.get("src_offset", 0), s.get("dst_offset", 0)
            while left > 0:
                n = os.copy_file_range(fin, fout, left, src_off + done, dst_off + done)
                if n == 0:
                    break
                done += n
                left -= n
            return done
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def op_directio(s):
    """Open with O_DIRECT, write "data_len" (a multiple of 4096) pattern bytes
    from a page-aligned buffer at "offset", read them back the same way;
    whether they came back equal."""
    n = s.get("data_len", 4096)
    off = s.get("offset", 0)
    out = mmap.mmap(-1, n)  # anonymous mappings are page-aligned
    out.write(pattern(n))
    back = mmap.mmap(-1, n)
    fd = os.open(path_of(s), os.O_RDWR | os.O_DIRECT)
    try:
        written = os.pwritev(fd, [out], off)
        got = os.preadv(fd, [back], off)
    finally:
        os.close(fd)
    return {"written": written, "read": got, "equal": back[:got] == out[:written]}


def op_mmapwrite(s):
    """Write "data" at "offset" through a shared writable mapping of the whole
    file, msync(MS_SYNC) it, unmap and close."""
    data = s.get("data", "").encode("utf-8")
    fd = os.open(path_of(s), os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            off = s.get("offset", 0)
            m[off:off + len(data)] = data
            m.flush()  # msync(MS_SYNC)
        finally:
            m.close()
    finally:
        os.close(fd)


def in_child(fn):
    """Fork; the child runs fn and exits with its code (an OSError: 100 + errno,
    anything else: 99), never returning into the driver. The child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = fn()
        except OSError as e:
            code = 100 + (e.errno or 0)
        except BaseException:
            pass
        finally:
            os._exit(code if isinstance(code, int) else 99)
    return pid


def exit_outcome(code):
    """A child's exit code as in_child made it: "ok" (0), an errno name, or the code."""
    if code == 0:
        return "ok"
    if isinstance(code, int) and 100 <= code < 256:
        return errno_name(code - 100)
    return code


def wait_children(pids):
    """Exit codes of forked children: waits on their pidfds (no polling), and
    kills any still running at the deadline."""
    codes = {}
    fds = {os.pidfd_open(pid): pid for pid in pids}
    deadline = time.monotonic() + CHILD_DEADLINE_S
    try:
        while fds:
            left = deadline - time.monotonic()
            ready = select.select(list(fds), [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                for fd, pid in fds.items():
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    codes[pid] = "killed at the deadline"
                break
            for fd in ready:
                pid = fds.pop(fd)
                os.close(fd)
                codes[pid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        for fd in fds:
            os.close(fd)
    return [codes[p] for p in pids]


def op_appendprocs(s):
    """"procs" processes each open the file O_WRONLY|O_APPEND and write "lines"
    lines ("p<i> line <j>", one write each) at the same time; their exit codes."""
    path = path_of(s)
    procs, lines = s.get("procs", 4), s.get("lines", 200)
    r, w = os.pipe()
    pids = []
    for i in range(procs):
        def writer(i=i):
            os.close(w)
            os.read(r, 1)  # start together: the parent closes the pipe once all are forked
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            code = 0
            for j in range(lines):
                line = ("p%d line %04d\n" % (i, j)).encode()
                if os.write(fd, line) != len(line):
                    code = 2
            os.close(fd)
            return code

        pids.append(in_child(writer))
    os.close(r)
    os.close(w)
    return wait_children(pids)


def op_lines(s):
    """A file's lines: how many, how many distinct, and the SHA-256 of them sorted."""
    with open(path_of(s), "rb") as f:
        lines = f.read().splitlines(keepends=True)
    return {"count": len(lines), "distinct": len(set(lines)), "sorted_sha256": hashlib.sha256(b"".join(sorted(lines))).hexdigest()}


def op_sortlines(s):
    """Rewrite a file with its lines sorted (so files written in a racy order compare)."""
    p = path_of(s)
    with open(p, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"".join(sorted(lines)))
    finally:
        os.close(fd)


def read_with_deadline(fd, n):
    got = b""
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise StepError("no data within %d s (read %d of %d bytes)" % (CHILD_DEADLINE_S, len(got), n))
        b = os.read(fd, n - len(got))
        if not b:
            break
        got += b
    return got


def op_fifo(s):
    """Pass "data" through a FIFO; what came out. how "rdwr": one process opens
    it O_RDWR (never blocks on Linux), writes and reads back; how "pair": this
    process opens it for reading (O_NONBLOCK, so the open cannot block), a
    child opens it for writing and writes, and this one reads it all."""
    p = path_of(s)
    data = s.get("data", "").encode("utf-8")
    how = s.get("how", "rdwr")
    if how == "rdwr":
        fd = os.open(p, os.O_RDWR)
        try:
            os.write(fd, data)
            return read_with_deadline(fd, len(data)).decode("utf-8", errors="replace")
        finally:
            os.close(fd)
    if how != "pair":
        raise StepError("unknown fifo how %r" % (how,))
    rfd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        def writer():
            os.close(rfd)
            wfd = os.open(p, os.O_WRONLY)  # a reader is there: does not block
            os.write(wfd, data)
            os.close(wfd)
            return 0

        pid = in_child(writer)
        try:
            got = read_with_deadline(rfd, len(data))
        finally:
            [code] = wait_children([pid])
        if code != 0:
            return {"writer": exit_outcome(code), "read": got.decode("utf-8", errors="replace")}
        return got.decode("utf-8", errors="replace")
    finally:
        os.close(rfd)


def op_tmpfile(s):
    """open(dir, O_TMPFILE|O_RDWR, mode), write "data", and with "link" give it
    that name (linkat through /proc/self/fd, which needs no privilege)."""
    fd = os.open(path_of(s), os.O_TMPFILE | os.O_RDWR, s.get("mode", 0o600))
    try:
        os.write(fd, s.get("data", "").encode("utf-8"))
        if s.get("link"):
            # (os.link calls link(2), which would link the /proc symlink itself: EXDEV)
            if libc.linkat(AT_FDCWD, b"/proc/self/fd/%d" % fd, AT_FDCWD, os.fsencode(s["link"]), AT_SYMLINK_FOLLOW) != 0:
                raise_errno()
    finally:
        os.close(fd)


def op_rename2(s):
    """renameat2(2) with "flags" "noreplace" or "exchange"."""
    flags = s.get("flags")
    if flags not in RENAME_FLAGS:
        raise StepError("unknown renameat2 flags %r" % (flags,))
    if libc.renameat2(AT_FDCWD, path_of(s, "src"), AT_FDCWD, path_of(s, "dst"), RENAME_FLAGS[flags]) != 0:
        raise_errno()


def try_lock(path, kind):
    """In a child process: open the file and try a non-blocking exclusive lock; its outcome."""
    def contender():
        fd = os.open(path, os.O_RDWR)
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 0

    return exit_outcome(wait_children([in_child(contender)])[0])


def op_lock(s):
    """Take an exclusive lock ("kind" "flock" or "fcntl", non-blocking), let
    another process try the same lock while it is held and again after it is
    released; the other process's outcomes."""
    kind = s.get("kind", "flock")
    if kind not in ("flock", "fcntl"):
        raise StepError("unknown lock kind %r" % (kind,))
    p = path_of(s)
    fd = os.open(p, os.O_RDWR)
    try:
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = try_lock(p, kind)
        if kind == "flock":
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            fcntl.lockf(fd, fcntl.LOCK_UN)
        released = try_lock(p, kind)
    finally:
        os.close(fd)
    return {"while_held": held, "after_release": released}


def op_tree(s):
    """Everything promise 2 compares, for every entry under a directory (as
    the caller sees it): type, mode, owner, size, nlink (not of directories),
    rdev, content hash, symlink target, xattrs of every namespace the caller
    can list (values base64), hard-link groups, and with "mtimes": true the
    mtime of everything but directories (with "dir_mtimes": true, of
    directories too: for trees whose directory times were set explicitly,
    as a copy tool sets them). The root's own state directory .mirrorfs (a
    peer's) is skipped."""
    root = path_of(s)
    with_mtimes = s.get("mtimes", False)
    with_dir_mtimes = s.get("dir_mtimes", False)
    skip = {os.fsencode(n) for n in s.get("skip_at_root", [".mirrorfs"])}
    out = {}
    first_by_ino = {}

    def entry(rel, absolute):
        st = os.lstat(absolute)
        t = type_of(st.st_mode)
        e = {"type": t, "mode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}
        if t != "dir":
            e["size"] = st.st_size
            e["nlink"] = st.st_nlink
            if with_mtimes:
                e["mtime_ns"] = str(st.st_mtime_ns)
        elif with_dir_mtimes:
            e["mtime_ns"] = str(st.st_mtime_ns)
        if t in ("chr", "blk"):
            e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        if t == "file":
            h = hashlib.sha256()
            with open(absolute, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            e["sha256"] = h.hexdigest()
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                e["hardlink_group"] = first_by_ino.setdefault(key, rel.decode("utf-8", errors="backslashreplace"))
        if t == "symlink":
            e["target"] = name_of(os.readlink(absolute))
        else:
            try:
                names = sorted(os.listxattr(absolute, follow_symlinks=False))
            except OSError as err:
                names = []
                e["listxattr_errno"] = errno.errorcode.get(err.errno, str(err.errno))
            xs = {}
            for n in names:  # system.posix_acl_* too: ACLs must match like any xattr
                if n == "trusted.mirrorfs.ino":
                    continue  # the mirror's inode number, which the copies keep and the mount hides
                try:
                    xs[n] = base64.b64encode(os.getxattr(absolute, n, follow_symlinks=False)).decode("ascii")
                except OSError as err:
                    xs[n] = {"errno": errno.errorcode.get(err.errno, str(err.errno))}
            if xs:
                e["xattrs"] = xs
        return e, t

    def walk(rel, absolute):
        for n in sorted(os.listdir(absolute)):
            if not rel and n in skip:
                continue
            child_rel = rel + b"/" + n if rel else n
            child_abs = os.path.join(absolute, n)
            e, t = entry(child_rel, child_abs)
            key = child_rel.decode("utf-8", errors="backslashreplace")
            out[key] = e
            if t == "dir":
                walk(child_rel, child_abs)

    e, _ = entry(b"", root)
    out[""] = e
    walk(b"", root)
    return out


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def run_step(s):
    try:
        if not isinstance(s, dict) or s.get("op") not in OPS:
            raise StepError("unknown step %r" % (s,))
        return {"ok": True, "value": OPS[s["op"]](s)}
    except OSError as e:
        if e.errno is None:
            return {"error": "%s: %s" % (type(e).__name__, e)}
        return {"errno": errno.errorcode.get(e.errno, str(e.errno))}
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    except Exception as e:  # a harness bug: say so, and go on with the next step
        return {"error": "%s: %s" % (type(e).__name__, e)}


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: posix-driver.py BASE_DIR < steps.json\n")
        sys.exit(2)
    steps = json.load(sys.stdin)
    os.umask(0o022)
    try:
        os.chdir(sys.argv[1])
    except OSError as e:
        sys.stderr.write("posix-driver: cannot enter %s: %s\n" % (sys.argv[1], e))
        sys.exit(3)
    results = [run_step(s) for s in steps]
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
