// The transport the benchmarks run over: mutual TLS, the default users get
// (one identity for every peer and relay, one for the mount, and a trust file
// with both, made by the product's own init code), or cleartext when
// MIRRORFS_BENCH_CLEARTEXT=1, to measure what TLS costs.
//   import { benchTransport } from './lib/bench-tls.mjs'   (from a .mjs benchmark)
//   node scripts/lib/bench-tls.mjs DIR                     (from a shell script: prints the peer flags, then the mount flags, one line each)
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';

const dist = resolve(import.meta.dirname, '../../dist');

export async function benchTransport(base) {
  if (process.env.MIRRORFS_BENCH_CLEARTEXT === '1') {
    return { scheme: 'http', label: 'cleartext (MIRRORFS_BENCH_CLEARTEXT=1)', peerArgs: ['--insecure-cleartext'], mountArgs: ['--insecure-cleartext'], clientTransport: { kind: 'cleartext' } };
  }
  const { initNode } = await import(join(dist, 'security/setup.js'));
  const { Trust } = await import(join(dist, 'security/trust.js'));
  const trust = join(base, 'trust');
  const peer = await initNode(join(base, 'tls-peer'), trust, 'bench-peer');
  const mount = await initNode(join(base, 'tls-mount'), trust, 'bench-mount');
  writeFileSync(trust, `${peer.identity.fingerprint} bench-peer roles=peer,relay\n${mount.identity.fingerprint} bench-mount roles=mount,standby\n`);
  return {
    scheme: 'https',
    label: 'mutual TLS',
    peerArgs: ['--tls-identity', peer.identity.dir, '--trust', trust],
    mountArgs: ['--tls-identity', mount.identity.dir, '--trust', trust],
    clientTransport: { kind: 'tls', identity: mount.identity, trust: new Trust(trust) },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const t = await benchTransport(resolve(process.argv[2] ?? '.'));
  process.stdout.write(`${t.peerArgs.join(' ')}\n${t.mountArgs.join(' ')}\n`);
}
