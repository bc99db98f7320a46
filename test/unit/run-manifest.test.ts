import { parseRunManifest } from '../../lib/archive/run-manifest.js';
import { ArchiverError } from '../../lib/errors.js';

async function manifestError(text: string): Promise<string> {
  try {
    await parseRunManifest(text, 'm.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ArchiverError);
    expect((err as ArchiverError).code).toBe('MANIFEST_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected the manifest to be rejected');
}

describe('run manifest', () => {
  it('accepts the CONTRACT example as JSON and as YAML', async () => {
    const json = `{ "version": 1, "graphs": [
      { "graphId": "4c5f882d-a813-4d78-a8e3-6d3212ddd121", "backups": "latest" },
      { "graphId": "9b9a05c2-0000-4000-8000-000000000001", "backups": "all" },
      { "graphId": "9b9a05c2-0000-4000-8000-000000000002", "backups": ["ada3e720-ab87-48cb-bff7-3ec5ae1a9652"] } ] }`;
    const yaml = 'version: 1\ngraphs:\n  - graphId: g1\n    backups: latest\n  - graphId: g2\n    backups: [b1, b2]\n';
    expect((await parseRunManifest(json)).graphs).toHaveLength(3);
    expect((await parseRunManifest(yaml)).graphs[1]).toEqual({ graphId: 'g2', backups: ['b1', 'b2'] });
  });

  it.each([
    ['{"version": 2, "graphs": [{"graphId": "g", "backups": "all"}]}', /version/],
    ['{"version": 1, "graphs": [{"graphId": "g", "backups": "all", "extra": 1}]}', /graphs\.0.*extra|extra/],
    ['{"version": 1, "graphs": [{"graphId": "g", "backups": "newest"}]}', /graphs\.0\.backups/],
    ['{"version": 1, "graphs": [{"graphId": 7, "backups": "all"}]}', /graphs\.0\.graphId/],
    ['{"version": 1, "graphs": [{"graphId": "../etc", "backups": "all"}]}', /graphs\.0\.graphId/],
    ['{"version": 1, "graphs": [{"graphId": "g", "backups": ["ok", "a/b"]}]}', /graphs\.0\.backups/],
    ['{"version": 1, "graphs": []}', /graphs/],
    ['{"version": 1, "graphs": [{"graphId": "g", "backups": "all"}, {"graphId": "g", "backups": "latest"}]}', /graphs\.1\.graphId.*twice/],
    ['{"version": 1, "graphs": [{"graphId": "g", "backups": "all"}], "unknown": true}', /unknown/],
    ['{"version": 1, "graphs": [', /not valid JSON or YAML/],
    ['- just\n- a list\n', /must be an object/],
  ])('rejects %s naming the problem', async (text, pattern) => {
    expect(await manifestError(text)).toMatch(pattern);
  });
});
