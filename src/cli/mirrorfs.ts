#!/usr/bin/env node
// Entry point. The thread pool is sized before anything uses it: the local
// copy and the FUSE threads share it with DNS and file system work.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('./mirrorfs-main.js');
