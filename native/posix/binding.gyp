# The mirrorfs posix addon (posix.c): built by scripts/build-native.mjs with npm's node-gyp.
{
  "targets": [
    {
      "target_name": "posix",
      "sources": ["posix.c"],
      "defines": ["_FILE_OFFSET_BITS=64", "NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
