import { backupFolderOf } from '../../../lib/catalog/scan.js';

describe('backupFolderOf (which keys belong to a backup folder)', () => {
  it('splits {prefix}{graph}/{backup}/{file}', () => {
    expect(backupFolderOf('ges-backups/', 'ges-backups/g1/b1/data.bin')).toEqual({ graphId: 'g1', backupId: 'b1', rest: 'data.bin' });
    expect(backupFolderOf('', 'g1/b1/manifest.json')).toEqual({ graphId: 'g1', backupId: 'b1', rest: 'manifest.json' });
  });

  it('keeps deeper keys in their backup folder (they are extra objects of that backup)', () => {
    expect(backupFolderOf('p/', 'p/g1/b1/sub/x')).toEqual({ graphId: 'g1', backupId: 'b1', rest: 'sub/x' });
  });

  it('leaves out the run reports, keys outside the prefix and keys that are not in a backup folder', () => {
    expect(backupFolderOf('ges-backups/', 'ges-backups/_runs/20261127T133000Z-1a2b3c4d.json')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'ges-backups/_runs/x/y.json')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'other/g1/b1/data.bin')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'ges-backups/readme.txt')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'ges-backups/g1/b1/')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'ges-backups/g1//x')).toBeUndefined();
    expect(backupFolderOf('ges-backups/', 'ges-backups//b1/x')).toBeUndefined();
  });
});
