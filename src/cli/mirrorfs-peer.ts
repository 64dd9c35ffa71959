#!/usr/bin/env node
// Entry point. Sized before anything touches libuv's thread pool: every fsync
// of a concurrent operation holds one pool thread, and the default of 4 would
// cap the peer at 4 durable operations in flight.
process.env.UV_THREADPOOL_SIZE ??= '32';
await import('./peer-main.js');
