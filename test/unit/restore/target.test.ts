import { loadRestoreTargetConfig } from '../../../lib/config.js';
import { ErrorCodes } from '../../../lib/errors.js';
import { importPathOf, parseRestoreTarget } from '../../../lib/restore/target.js';
import { thrown } from '../../support/thrown.js';

describe('parseRestoreTarget', () => {
  it('reads s3://bucket/prefix/ (adding the folder\'s slash) and gives GES its import_path without scheme or trailing slash', () => {
    const t = parseRestoreTarget('s3://restore-bucket/ges/graph-1');
    expect(t).toEqual({ kind: 's3', bucket: 'restore-bucket', prefix: 'ges/graph-1/' });
    expect(importPathOf(t as Extract<typeof t, { kind: 's3' }>)).toBe('restore-bucket/ges/graph-1');
    expect(parseRestoreTarget('s3://restore-bucket/a/')).toEqual({ kind: 's3', bucket: 'restore-bucket', prefix: 'a/' });
  });

  it('takes anything else as a directory, relative to the working directory', () => {
    expect(parseRestoreTarget('out/b1', '/srv')).toEqual({ kind: 'dir', dir: '/srv/out/b1' });
    expect(parseRestoreTarget('/abs/dir', '/srv')).toEqual({ kind: 'dir', dir: '/abs/dir' });
  });

  it.each(['', 's3://', 's3://Bad_Bucket/p/', 's3://bucket', 's3://bucket/', 's3://bucket/a//b/', 's3://bucket/../x/', 'obs://bucket/p/', 'https://host/p'])('refuses %j with ARGS_INVALID', (to) => {
    expect(thrown(() => parseRestoreTarget(to))).toMatchObject({ code: ErrorCodes.ArgsInvalid });
  });
});

describe('loadRestoreTargetConfig', () => {
  it('is undefined without RESTORE_S3_ENDPOINT: the archive\'s own S3 settings are used', () => {
    expect(loadRestoreTargetConfig({})).toBeUndefined();
  });

  it('reads the endpoint, region, path style and both keys', () => {
    expect(loadRestoreTargetConfig({
      RESTORE_S3_ENDPOINT: 'https://obs.cn-north-4.myhuaweicloud.com/', RESTORE_S3_REGION: 'cn-north-4',
      RESTORE_S3_FORCE_PATH_STYLE: 'true', RESTORE_S3_ACCESS_KEY_ID: 'AK', RESTORE_S3_SECRET_ACCESS_KEY: 'SK',
    })).toEqual({
      endpoint: 'https://obs.cn-north-4.myhuaweicloud.com', region: 'cn-north-4', forcePathStyle: true,
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
    });
    expect(loadRestoreTargetConfig({ RESTORE_S3_ENDPOINT: 'http://127.0.0.1:9000', AWS_REGION: 'us-east-1' })).toEqual({
      endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: false,
    });
  });

  it.each([
    [{ RESTORE_S3_REGION: 'x' }, 'RESTORE_S3_REGION is set but RESTORE_S3_ENDPOINT is not'],
    [{ RESTORE_S3_ENDPOINT: 'obs.example' }, 'RESTORE_S3_ENDPOINT must be an https URL'],
    [{ RESTORE_S3_ENDPOINT: 'https://obs.example' }, 'RESTORE_S3_REGION is required'],
    [{ RESTORE_S3_ENDPOINT: 'https://obs.example', RESTORE_S3_REGION: 'r', RESTORE_S3_ACCESS_KEY_ID: 'AK' }, 'Set both RESTORE_S3_ACCESS_KEY_ID and RESTORE_S3_SECRET_ACCESS_KEY'],
  ])('refuses %j with CONFIG_INVALID naming the variable, never a value', (env, message) => {
    expect(thrown(() => loadRestoreTargetConfig(env))).toMatchObject({ code: ErrorCodes.ConfigInvalid, message: expect.stringContaining(message) as string });
  });
});
