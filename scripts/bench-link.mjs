// Delay accuracy of the link emulator (not a test): a TCP echo server, reached
// directly and through `mirrorfs-link run` at several delays; 4 KiB request,
// 4 KiB echo. Added one-way delay = (round trip through the link - direct round
// trip) / 2, compared with the asked delay. Prints a table.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const LINK = join(root, 'dist/cli/mirrorfs-link.js');
const ROUNDS = 400;
const echo = net.createServer({ noDelay: true }, (s) => s.on('data', (d) => s.write(d)));
await new Promise((r) => echo.listen(0, '127.0.0.1', r));
const echoPort = echo.address().port;

async function roundTrips(port) {
  const sock = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await new Promise((r) => sock.once('connect', r));
  const msg = Buffer.alloc(4096, 1);
  const out = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = process.hrtime.bigint();
    sock.write(msg);
    let got = 0;
    await new Promise((r) => {
      const on = (d) => {
        got += d.length;
        if (got >= msg.length) { sock.off('data', on); r(); }
      };
      sock.on('data', on);
    });
    out.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  sock.destroy();
  return out.sort((a, b) => a - b);
}
const q = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))];

const direct = await roundTrips(echoPort);
const rows = [];
for (const delay of ['0us', '100us', '250us', '600us', '1ms', '5ms', '20ms']) {
  const p = spawn(process.execPath, [LINK, 'run', '--to', `127.0.0.1:${echoPort}`, '--delay', delay], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((r) => { let out = ''; p.stdout.on('data', (d) => { out += d; const m = / on [^ ]+:(\d+) ->/.exec(out); if (m) r(Number(m[1])); }); });
  const rt = await roundTrips(port);
  p.kill('SIGTERM');
  const asked = Number(delay.replace('us', '').replace('ms', '')) * (delay.endsWith('ms') ? 1000 : 1);
  const added50 = (q(rt, 0.5) - q(direct, 0.5)) / 2;
  const added99 = (q(rt, 0.99) - q(direct, 0.5)) / 2;
  rows.push({ asked, added50, added99 });
}
echo.close();
console.log(`direct round trip p50 ${q(direct, 0.5).toFixed(0)} us, p99 ${q(direct, 0.99).toFixed(0)} us (${ROUNDS} rounds each)\n`);
console.log('| asked one-way delay | added one-way p50 | error p50 | added one-way p99 | error p99 |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.asked} us | ${r.added50.toFixed(0)} us | ${(r.added50 - r.asked).toFixed(0)} us | ${r.added99.toFixed(0)} us | ${(r.added99 - r.asked).toFixed(0)} us |`);
