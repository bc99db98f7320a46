import { loadStorageConfig } from '../../../lib/config.js';
import { ArchiverError } from '../../../lib/errors.js';

function storageError(env: Record<string, string | undefined>): ArchiverError {
  try {
    loadStorageConfig(env);
  } catch (err) {
    if (err instanceof ArchiverError) return err;
    throw err;
  }
  throw new Error('expected loadStorageConfig to throw');
}

describe('loadStorageConfig (verify and list)', () => {
  it('needs only ARCHIVE_BUCKET: no GES endpoint or credentials', () => {
    // Act
    const config = loadStorageConfig({ ARCHIVE_BUCKET: 'audit-bucket' });
    // Assess
    expect(config).toEqual({ archive: { bucket: 'audit-bucket', prefix: 'ges-backups/' }, s3: { forcePathStyle: false } });
    expect(Object.isFrozen(config.archive)).toBe(true);
  });

  it('applies the same prefix and path-style rules as loadConfig', () => {
    const config = loadStorageConfig({ ARCHIVE_BUCKET: 'audit-bucket', ARCHIVE_PREFIX: 'archive', S3_FORCE_PATH_STYLE: 'true' });
    expect(config.archive.prefix).toBe('archive/');
    expect(config.s3.forcePathStyle).toBe(true);
  });

  it('names the offending variables', () => {
    const missing = storageError({ GES_ENDPOINT: 'https://ges.example.com' });
    const bad = storageError({ ARCHIVE_BUCKET: 'Bad_Bucket', ARCHIVE_PREFIX: '../x', S3_FORCE_PATH_STYLE: 'maybe' });
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toContain('ARCHIVE_BUCKET');
    expect(missing.message).not.toContain('GES_ENDPOINT');
    expect(bad.message).toContain('ARCHIVE_BUCKET');
    expect(bad.message).toContain('ARCHIVE_PREFIX');
    expect(bad.message).toContain('S3_FORCE_PATH_STYLE');
  });
});
