import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { folderCycles, folderGraph } from '../support/import-graph.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The layer order of lib/, lowest first (one place: eslint.config.js). */
async function layerOrder(): Promise<string[][]> {
  const config = (await import(pathToFileURL(join(root, 'eslint.config.js')).href)) as { layers: string[][] };
  return config.layers;
}

/** Where `folder` sits: the lib/ root modules lowest, cli/ and functions/ on top. */
function rankOf(layers: string[][], folder: string): number {
  if (folder === 'lib') return -1;
  if (folder.startsWith('lib/')) {
    const tier = layers.findIndex((t) => t.includes(folder.slice('lib/'.length)));
    if (tier === -1) throw new Error(`${folder} is in no layer: add it to \`layers\` in eslint.config.js`);
    return tier;
  }
  return layers.length; // cli, functions, functions/lib
}

describe('the folder import graph', () => {
  it('has no cycle', () => {
    // Act
    const cycles = folderCycles(folderGraph(root));

    // Assess
    expect(cycles.map((c) => c.join(' → '))).toEqual([]);
  });

  it('points down the layers of eslint.config.js, dynamic imports included', async () => {
    // Prepare
    const layers = await layerOrder();
    const graph = folderGraph(root);

    // Act
    const upward: string[] = [];
    for (const [from, edges] of graph) {
      for (const [to, examples] of edges) {
        const top = (f: string): string => f.split('/')[0]!;
        const sideways = top(from) !== 'lib' && top(to) !== 'lib'; // cli ↔ functions
        if (rankOf(layers, to) >= rankOf(layers, from) && (from.startsWith('lib') || sideways) && !(from === 'functions' && to === 'functions/lib')) {
          upward.push(`${from} → ${to} (${examples[0]})`);
        }
      }
    }

    // Assess
    expect(upward).toEqual([]);
  });

  it('names a cycle when there is one', () => {
    // Prepare: archive → fanout → alerts → archive, and store below them
    const graph = new Map([
      ['lib/archive', new Map([['lib/fanout', []], ['lib/store', []]])],
      ['lib/fanout', new Map([['lib/alerts', []]])],
      ['lib/alerts', new Map([['lib/archive', []]])],
      ['lib/store', new Map<string, string[]>()],
    ]);

    // Act
    const cycles = folderCycles(graph);

    // Assess
    expect(cycles).toEqual([['lib/alerts', 'lib/archive', 'lib/fanout', 'lib/alerts']]);
  });
});
