import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../helpers/child.js';
import { cleanupMounts, controlUrl, startMount } from '../helpers/mount.js';
import { cleanupPeers, spawnPeer } from '../helpers/peer.js';
import { cleanupTmp, tmpDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

/** The mount's status page in a real browser (Debian's chromium, headless), checked by its DOM and a screenshot. */

let browser: Browser;

beforeAll(async () => {
  // playwright gives the browser a fresh temporary profile of its own.
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // Flags from the machine notes: no sandbox as root, and nothing that reaches for the (closed) network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  await cleanupMounts();
  await cleanupPeers();
  cleanupTmp();
});


/** Pixels of the PNG within 40 of this colour on each channel. */
function countColour(png: PNG, hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (Math.abs(png.data[i]! - r) < 40 && Math.abs(png.data[i + 1]! - g) < 40 && Math.abs(png.data[i + 2]! - b) < 40) n++;
  }
  return n;
}

describe('status page', () => {
  it('shows the peers with their real figures and draws a live latency line for each; a peer that goes down shows as down', async () => {
    const east = await spawnPeer({ name: 'east' });
    const west = await spawnPeer({ name: 'west' });
    const mount = await startMount({ peers: [east, west], extraArgs: ['--control-listen', '127.0.0.1:0', '--ack', '1', '--peer-timeout', '1000'] });
    const url = await controlUrl(mount);
    // Writes spread over several seconds, so the chart has several points per peer (one per second
    // with changes): they go on until status.json holds 4 for each peer, not for a fixed time, which
    // a loaded machine may spend on fewer writes. The writer stops when the stop file appears.
    const stop = join(tmpDir('mirrorfs-stop-'), 'stop');
    const writer = runNode(`
      import { existsSync, writeFileSync } from 'node:fs';
      let i = 0;
      while (!existsSync(ARGS[1])) { writeFileSync(ARGS[0] + '/w' + (i++ % 50), 'x'.repeat(4096)); await new Promise((r) => setTimeout(r, 20)); }
    `, [mount.mountpoint, stop]);
    try {
      await waitFor(async () => {
        const { latency } = (await (await fetch(`${url}/status.json`)).json()) as { latency: Record<string, unknown[] | undefined> };
        return [east.name, west.name].every((name) => (latency[name]?.length ?? 0) >= 4);
      }, 'status.json to hold 4 latency points per peer', 30_000, 200);
    } finally {
      writeFileSync(stop, '');
    }
    await writer;
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    try {
      await page.goto(`${url}/`, { timeout: 15_000 });
      // The figures on the page are the mount's own, as /status.json gives them.
      await page.waitForFunction(() => document.querySelectorAll('#peers tr').length === 2, undefined, { timeout: 10_000 });
      const status = (await (await fetch(`${url}/status.json`)).json()) as { status: { peers: Array<{ name: string; operations: number; latencyUsP50: number }> }; latency: Record<string, unknown[]> };
      for (const peer of status.status.peers) {
        const row = page.locator(`tr[data-peer="${peer.name}"]`);
        await expect.poll(() => row.locator('[data-field="state"]').textContent(), { timeout: 5000 }).toBe('in-sync');
        const operations = Number(await row.locator('[data-field="operations"]').textContent());
        expect(operations).toBeGreaterThan(50);
        expect(Math.abs(operations - peer.operations)).toBeLessThanOrEqual(5); // the same figure, give or take a lease renewal between the two reads
        expect(Number(await row.locator('[data-field="p50"]').textContent())).toBeGreaterThan(0);
        expect(status.latency[peer.name]!.length).toBeGreaterThanOrEqual(2);
      }
      expect(await page.locator('#meta').textContent()).toMatch(/phase mounted · epoch 1 · last change \d+ · ack 1/);
      // The screenshot of the chart holds both peers' lines, in their colours: polled, since the page
      // redraws once a second and may not have drawn the latest points yet. west is drawn after east
      // and covers it where their latencies match (at ack 1 they often do), so east may show only a
      // few pixels: each colour must be there, and the two together must make lines, not a dot.
      const chart = async () => {
        const png = PNG.sync.read(await page.locator('#chart').screenshot());
        return { east: countColour(png, '#1f77b4'), west: countColour(png, '#d62728') };
      };
      await expect
        .poll(async () => { const c = await chart(); return c.east > 0 && c.west > 30 && c.east + c.west > 60; }, { timeout: 10_000 })
        .toBe(true);
      // Kept where MIRRORFS_SCREENSHOT_DIR says, to look at by eye.
      const shots = process.env.MIRRORFS_SCREENSHOT_DIR ?? tmpDir('mirrorfs-shot-');
      await page.screenshot({ path: join(shots, 'status-page.png') });
      // west goes down: the page says so, with its lag, within a few refreshes.
      await west.kill9();
      await runNode(`import { writeFileSync } from 'node:fs'; for (let i = 0; i < 5; i++) writeFileSync(ARGS[0] + '/late' + i, 'x');`, [mount.mountpoint]);
      const westRow = page.locator('tr[data-peer="west"]');
      await expect.poll(async () => (await westRow.locator('[data-field="state"]').getAttribute('class')) ?? '', { timeout: 10_000 }).toBe('down');
      // The page may have refreshed while the late writes were still going on: wait for a refresh after them.
      await expect.poll(async () => Number(await westRow.locator('[data-field="lag-ops"]').textContent()), { timeout: 10_000 }).toBeGreaterThanOrEqual(10);
    } finally {
      await page.close();
    }
  });
});
