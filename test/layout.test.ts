import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout of src/ tells the architecture (docs/ARCHITECTURE.md, "Layout"):
 * each folder is one room, and a room imports only rooms below it. This keeps
 * it that way: a new import that points up, or sideways between the peer and
 * the mount, fails here with the file and the line.
 */
const SRC = resolve(import.meta.dirname, '../src');

/** Rooms from the bottom up; a room may import its own files and rooms of a lower rank only. */
const RANK: Record<string, number> = {
  'assert.ts': 0, 'refusal.ts': 0,
  protocol: 1,
  'log.ts': 2,
  security: 3, ordering: 3, store: 3, link: 3,
  client: 4,
  relay: 5, metrics: 5, 'mount/cache': 5,
  peer: 6, 'mount/peers': 6,
  'mount/recovery': 7, 'mount/takeover': 7,
  'mount/fanout': 8,
  'mount/fuse': 9,
  'mount/control': 10,
  cli: 11,
};

function roomOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  if (parts.length === 1) return parts[0]!;
  return parts[0] === 'mount' ? `mount/${parts[1]}` : parts[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('the layout of src/', () => {
  const files = sources(SRC);

  it('puts every file in a room of the table', () => {
    expect(files.map(roomOf).filter((room) => RANK[room] === undefined)).toEqual([]);
  });

  it('has imports that only point down, and none between the peer and the mount', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = roomOf(file);
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        for (const m of line.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
          const to = roomOf(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
          if (to === from) continue;
          const peerAndMount = (from === 'peer' && to.startsWith('mount/')) || (from.startsWith('mount/') && to === 'peer');
          if (peerAndMount || !(RANK[to]! < RANK[from]!)) wrong.push(`${relative(SRC, file)}:${i + 1} (${from}) imports ${m[1]} (${to})`);
        }
      });
    }
    expect(wrong).toEqual([]);
  });
});
