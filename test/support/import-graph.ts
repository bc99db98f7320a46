import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The folder import graph of the code base: an edge `a → b` for every relative import (static,
 * `export … from`, `import type` and dynamic `import()`) from a file in folder `a` to one in
 * folder `b`. A folder is `lib` (the root modules), `lib/<name>`, `cli`, `functions` or
 * `functions/lib`.
 */
export type FolderGraph = Map<string, Map<string, string[]>>;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

export function folderOf(root: string, file: string): string {
  const parts = relative(root, file).split(sep);
  parts.pop();
  return parts.slice(0, 2).join('/');
}

/** Edges carry one example import each (`file → imported file`) so a failure can name it. */
export function folderGraph(root: string, tops: readonly string[] = ['lib', 'cli', 'functions']): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const file of tops.flatMap((top) => tsFiles(join(root, top)))) {
    const from = folderOf(root, file);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), fileName).replace(/\.js$/, '.ts');
      const to = folderOf(root, target);
      if (to === from) continue;
      const edges = graph.get(from) ?? new Map<string, string[]>();
      graph.set(from, edges);
      const examples = edges.get(to) ?? [];
      examples.push(`${relative(root, file)} → ${relative(root, target)}`);
      edges.set(to, examples);
    }
  }
  return graph;
}

/**
 * Every cycle's folders in order (`a → b → … → a`, starting at the alphabetically first), one per
 * strongly connected component (Tarjan).
 */
export function folderCycles(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return components.map((component) => cycleThrough(graph, new Set(component), [...component].sort()[0]!));
}

/** One concrete cycle from `start` inside the component (breadth-first back to `start`). */
function cycleThrough(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>, members: ReadonlySet<string>, start: string): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...members, start];
}
