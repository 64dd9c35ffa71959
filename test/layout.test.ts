import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout of src/ tells the architecture: each folder is one room, and a
 * room imports only rooms of a lower rank. The ranks are read from the table in
 * docs/ARCHITECTURE.md ("Layout"), so the document and the code cannot drift
 * apart: a new import that points up or sideways, a file in no room, or a room
 * the table lacks fails here with the file and the line.
 */
const SRC = resolve(import.meta.dirname, '../src');
const ARCHITECTURE = resolve(import.meta.dirname, '../docs/ARCHITECTURE.md');

/** Rows such as "| 5 | `relay/` | ..." or "| 0 | `assert.ts` | ...": room -> rank. */
function ranksFromArchitecture(): Record<string, number> {
  const ranks: Record<string, number> = {};
  for (const m of readFileSync(ARCHITECTURE, 'utf8').matchAll(/^\| (\d+) \| `([a-z/.-]+?)\/?` \|/gm)) ranks[m[2]!] = Number(m[1]);
  return ranks;
}

const RANK = ranksFromArchitecture();

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

  it('puts every file in a room of the table, and the table names no room that is gone', () => {
    expect(Object.keys(RANK).length).toBeGreaterThan(15);
    expect(files.map(roomOf).filter((room) => RANK[room] === undefined)).toEqual([]);
    const rooms = new Set(files.map(roomOf));
    expect(Object.keys(RANK).filter((room) => !rooms.has(room))).toEqual([]);
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
