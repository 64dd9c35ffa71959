#!/usr/bin/env node
import { Command } from 'commander';
import { MICROSECONDS_PER_MILE, LinkEmulator, parseDelay, type LinkMode } from '../link/emulator.js';
import { startLinkControl } from '../link/control.js';
import { parseListen } from './listen.js';

/** Measured here (scripts/bench-link.mjs): added one-way delay against the asked one. */
const ACCURACY =
  'Accuracy (node scripts/bench-link.mjs on this 2-vCPU machine, 4 KiB echo over loopback, 400 rounds, two runs):\n' +
  '  one-way delay added = the asked delay + about 110-290 us at the median (the proxy\'s own cost:\n' +
  '  about 150 us even at 0), p99 up to +1.5 ms. Asked 600 us: 714-723 us p50; 5 ms: 5.14-5.19 ms;\n' +
  '  20 ms: 20.29-20.35 ms. Below about 1 ms that cost is a large share: scale distances up\n' +
  '  (--scale 10: 1 mile = 50 us).';

const program = new Command('mirrorfs-link')
  .description('Emulate a wide-area link between two mirrorfs hops: a TCP proxy that adds a one-way delay and can be cut or made to drop on command.')
  .addHelpText('after', `\n${ACCURACY}`);

program
  .command('run')
  .description('forward --listen to --to with a delay in each direction')
  .requiredOption('--to <host:port>', 'where the link leads (the next hop)')
  .option('--listen <host:port>', 'where the link starts', '127.0.0.1:0')
  .option('--delay <time>', 'one-way delay: 250us, 2ms, 1s (default unit ms)', '0')
  .option('--miles <n>', `one-way delay as a distance, ${MICROSECONDS_PER_MILE} us per mile (overrides --delay)`)
  .option('--scale <n>', 'multiply --miles by this (a scaled-up distance)', '1')
  .option('--control <host:port>', 'control endpoint (GET /status, POST /mode/up|cut|drop)', '127.0.0.1:0')
  .addHelpText('after', `\nExamples:\n  mirrorfs-link run --listen 127.0.0.1:8001 --to 127.0.0.1:7070 --miles 120\n  mirrorfs-link run --to 10.0.0.2:7070 --delay 3ms --control 127.0.0.1:8101\n\n${ACCURACY}`)
  .action(async (o: { to: string; listen: string; delay: string; miles?: string; scale: string; control: string }) => {
    try {
      const scale = Number(o.scale);
      if (!(scale > 0)) throw new Error(`--scale ${o.scale}: expected a positive number`);
      const delayUs = o.miles !== undefined ? parseDelay(`${o.miles}mi`, scale) : parseDelay(o.delay);
      const listen = parseListen(o.listen);
      const to = parseListen(o.to);
      const control = parseListen(o.control);
      const link = await LinkEmulator.start({ listenHost: listen.host, listenPort: listen.port, targetHost: to.host, targetPort: to.port, delayUs });
      const ctl = await startLinkControl(link, control.host, control.port);
      const stop = () => {
        void Promise.all([link.close(), ctl.close()]).then(() => process.exit(0));
      };
      // Before the line that says it is ready: a SIGTERM sent on reading it must find the handler.
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      process.stdout.write(`mirrorfs-link listening on ${listen.host}:${link.port} -> ${to.host}:${to.port} delay ${delayUs}us control ${control.host}:${ctl.port}\n`);
    } catch (err) {
      fail((err as Error).message);
    }
  });

for (const mode of ['up', 'cut', 'drop'] as const) {
  program
    .command(mode)
    .description(
      mode === 'up' ? 'restore the link (connections that were dropping are reset)' : mode === 'cut' ? 'cut the link: reset every connection, refuse new ones' : 'drop silently: connections stay open, nothing gets through',
    )
    .requiredOption('--control <host:port>', 'the link\'s control endpoint')
    .action(async (o: { control: string }) => print(await control(o.control, 'POST', `/mode/${mode satisfies LinkMode}`)));
}

program
  .command('status')
  .description('show the link\'s mode, delay, connections and bytes')
  .requiredOption('--control <host:port>', 'the link\'s control endpoint')
  .action(async (o: { control: string }) => print(await control(o.control, 'GET', '/status')));

async function control(address: string, method: string, path: string): Promise<unknown> {
  const { host, port } = parseListen(address);
  try {
    const res = await fetch(`http://${host}:${port}${path}`, { method, signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as unknown;
    if (!res.ok) fail(`control ${address}: ${JSON.stringify(body)}`);
    return body;
  } catch (err) {
    fail(`control ${address} unreachable: ${(err as Error).message}`);
  }
}

function print(body: unknown): void {
  process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
}

function fail(message: string): never {
  process.stderr.write(`mirrorfs-link: ${message}\n`);
  process.exit(1);
}

await program.parseAsync();
