import { parse } from 'yaml';

/**
 * YAML for run manifests, in a module of its own so that only a YAML manifest loads the parser
 * (run-manifest.ts imports this file dynamically; a JSON manifest or `archive --graph` never do).
 */
export function parseYaml(text: string): unknown {
  return parse(text, { maxAliasCount: 50 });
}
