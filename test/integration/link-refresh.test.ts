// A link refresh shared by several files of a backup (issue 8, item 5): it runs on the backup's
// signal, and each file waits with its own, so one file's failure never fails another file's
// refresh. Against the GES emulator; the test only slows GES's answer down to hold the refresh
// in flight while the first file's copy fails.
import { request } from 'undici';
import { BackupLinks } from '../../lib/links/backup-links.js';
import { loadConfig } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { GesClient } from '../../lib/ges/client.js';
import { silentLogger } from '../../lib/log.js';
import { sleep } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { tokenEnv } from '../support/cli.js';

const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '0f1e2d3c-4b5a-4697-8877-665544332211';
const TOKEN = 'static-token-1';

let emulator: Emulator;
let rt: Runtime;

beforeAll(async () => {
  emulator = await startEmulator({ staticTokens: [TOKEN], graphs: [{ id: G, backups: [{ id: B, files: [{ name: 'a.bin', bytes: 100 }, { name: 'b.bin', bytes: 200 }] }] }] });
  rt = createRuntime(loadConfig(tokenEnv(emulator, 'unused-bucket', TOKEN)), silentLogger());
});

afterAll(async () => {
  await rt.close();
  await emulator.close();
});

/** The emulator's GES, answering backup-files 300 ms late (a request cut off by its signal fails like a real one). */
function slowGes(): GesClient & { calls: number } {
  const ges = {
    calls: 0,
    listBackups: rt.ges.listBackups.bind(rt.ges),
    projectId: rt.ges.projectId.bind(rt.ges),
    async getBackupFiles(graphId: string, backupId: string, options: { signal?: AbortSignal } = {}) {
      ges.calls += 1;
      await sleep(300, options.signal);
      return rt.ges.getBackupFiles(graphId, backupId, options);
    },
  };
  return ges;
}

describe('shared link refresh', () => {
  it('survives the failure of the file that started it: the other file still gets a working link, from one GES request', async () => {
    // Prepare
    const ges = slowGes();
    const backup = new AbortController();
    const links = new BackupLinks({ ges }, { graphId: G, backupId: B }, undefined, backup.signal);
    const copyA = new AbortController();
    const copyB = new AbortController();

    // Act: a.bin asks first, b.bin joins the same refresh, then a.bin's copy fails
    const forA = links.fresh('a.bin', copyA.signal);
    const forB = links.fresh('b.bin', copyB.signal);
    setTimeout(() => copyA.abort(new Error('copy of a.bin failed')), 50);

    // Assess
    await expect(forA).rejects.toThrow('copy of a.bin failed');
    const link = await forB;
    expect(ges.calls).toBe(1);
    const res = await request(link.url);
    expect(res.statusCode).toBe(200);
    expect((await res.body.arrayBuffer()).byteLength).toBe(200);
  });

  it('stops when the backup itself is cancelled', async () => {
    // Prepare
    const backup = new AbortController();
    const links = new BackupLinks({ ges: slowGes() }, { graphId: G, backupId: B }, undefined, backup.signal);

    // Act
    const waiting = links.fresh('b.bin', new AbortController().signal);
    setTimeout(() => backup.abort(new ArchiverError(ErrorCodes.Aborted, 'Interrupted by SIGINT')), 50);

    // Assess
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
