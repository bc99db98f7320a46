import { loadConfig, loadLogSettings, loadStorageConfig } from '../../lib/config.js';
import { ArchiverError } from '../../lib/errors.js';

const base = {
  GES_ENDPOINT: 'https://ges.cn-north-4.myhuaweicloud.com',
  GES_PROJECT_ID: 'a4a5d4098fb4474fa22cd05f897d6b99',
  GES_AUTH_TOKEN: 'tok-secret',
  ARCHIVE_BUCKET: 'my-archive',
};

const MiB = 1024 * 1024;

function configError(env: Record<string, string | undefined>): ArchiverError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ArchiverError) return err;
    throw err;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the CONTRACT defaults', () => {
    // Act
    const config = loadConfig(base);
    // Assess
    expect(config.archive.prefix).toBe('ges-backups/');
    expect(config.download.allowedHosts).toEqual(['*.myhuaweicloud.com', '*.myhuaweicloud.eu']);
    expect(config.ges.auth).toEqual({ mode: 'token', token: 'tok-secret' });
    expect(config.s3.forcePathStyle).toBe(false);
    // The copy memory bound depends on these: (streams + parts) x part size per file, times files.
    expect(config.partSizeBytes).toBe(8 * 1024 * 1024);
    expect(config.concurrency).toEqual({ backups: 2, files: 4, parts: 4, streams: 8 });
    expect(Object.isFrozen(config.ges)).toBe(true);
  });

  it('names every missing required variable', () => {
    const err = configError({});
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('GES_ENDPOINT');
    expect(err.message).toContain('ARCHIVE_BUCKET');
  });

  it('requires complete IAM settings and never echoes the password', () => {
    const err = configError({ ...base, GES_AUTH_TOKEN: undefined, HWC_USERNAME: 'u', HWC_PASSWORD: 'hunter2-secret' });
    expect(err.message).toMatch(/HWC_IAM_ENDPOINT.*HWC_DOMAIN.*HWC_PROJECT/);
    expect(err.message).not.toContain('hunter2-secret');
  });

  it('accepts IAM auth without a project id', () => {
    const config = loadConfig({
      GES_ENDPOINT: base.GES_ENDPOINT, ARCHIVE_BUCKET: 'b-1', HWC_IAM_ENDPOINT: 'https://iam.myhuaweicloud.com/',
      HWC_USERNAME: 'u', HWC_PASSWORD: 'p', HWC_DOMAIN: 'd', HWC_PROJECT: 'cn-north-4',
    });
    expect(config.ges.projectId).toBeUndefined();
    expect(config.ges.auth).toMatchObject({ mode: 'iam', iamEndpoint: 'https://iam.myhuaweicloud.com', project: 'cn-north-4' });
  });

  it('refuses both auth modes at once, a token without a project id, and bad values', () => {
    expect(configError({ ...base, HWC_USERNAME: 'u' }).message).toMatch(/more than one auth mode are set \(GES_AUTH_TOKEN for a token; HWC_USERNAME for an IAM password\)/);
    expect(configError({ ...base, GES_PROJECT_ID: undefined }).message).toMatch(/GES_PROJECT_ID is required/);
    expect(configError({ ...base, GES_ENDPOINT: 'ftp://x' }).message).toMatch(/GES_ENDPOINT must be an https URL/);
    expect(configError({ ...base, ARCHIVE_BUCKET: 'Bad_Bucket' }).message).toMatch(/ARCHIVE_BUCKET/);
    expect(configError({ ...base, ARCHIVE_PREFIX: '../up' }).message).toMatch(/ARCHIVE_PREFIX/);
    expect(configError({ ...base, DOWNLOAD_ALLOWED_HOSTS: 'ok.example.com,bad host' }).message).toMatch(/DOWNLOAD_ALLOWED_HOSTS.*bad host/);
    expect(configError({ ...base, S3_FORCE_PATH_STYLE: 'maybe' }).message).toMatch(/S3_FORCE_PATH_STYLE/);
    expect(configError({ ...base, ARCHIVE_FILE_CONCURRENCY: '0' }).message).toMatch(/ARCHIVE_FILE_CONCURRENCY/);
  });

  describe('AK/SK auth', () => {
    const aksk = {
      GES_ENDPOINT: base.GES_ENDPOINT, GES_PROJECT_ID: base.GES_PROJECT_ID, ARCHIVE_BUCKET: 'my-archive',
      HWC_AK: 'AKEXAMPLE00000000001', HWC_SK: 'sk-secret-value',
    };

    it('is the third auth mode, with an optional security token; the SK is trimmed', () => {
      // Act
      const permanent = loadConfig({ ...aksk, HWC_SK: ' sk-secret-value\n' });
      const temporary = loadConfig({ ...aksk, HWC_SECURITY_TOKEN: 'sts-token' });
      // Assess
      expect(permanent.ges.auth).toEqual({ mode: 'aksk', accessKey: 'AKEXAMPLE00000000001', secretKey: 'sk-secret-value', securityToken: undefined });
      expect(temporary.ges.auth).toMatchObject({ mode: 'aksk', securityToken: 'sts-token' });
    });

    it('accepts the Huawei SDK\'s variable names, alone or agreeing with ours', () => {
      // Act
      const config = loadConfig({
        GES_ENDPOINT: base.GES_ENDPOINT, ARCHIVE_BUCKET: 'my-archive', HUAWEICLOUD_SDK_AK: 'AKSDK', HUAWEICLOUD_SDK_SK: 'sdk-sk',
        HUAWEICLOUD_SDK_SECURITY_TOKEN: 'sdk-sts', HUAWEICLOUD_SDK_PROJECT_ID: 'abc123', HWC_AK: 'AKSDK',
      });
      // Assess
      expect(config.ges.auth).toEqual({ mode: 'aksk', accessKey: 'AKSDK', secretKey: 'sdk-sk', securityToken: 'sdk-sts' });
      expect(config.ges.projectId).toBe('abc123');
    });

    it('refuses two names of one setting with different values, naming both and neither value', () => {
      // Act
      const err = configError({ ...aksk, HUAWEICLOUD_SDK_SK: 'another-secret' });
      const project = configError({ ...aksk, HUAWEICLOUD_SDK_PROJECT_ID: 'other' });
      // Assess
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toMatch(/HWC_SK and HUAWEICLOUD_SDK_SK are set to different values/);
      expect(err.message).not.toMatch(/sk-secret-value|another-secret/);
      expect(project.message).toMatch(/GES_PROJECT_ID and HUAWEICLOUD_SDK_PROJECT_ID/);
    });

    it('names the missing half of an AK/SK, a lone security token, and the missing project id', () => {
      expect(configError({ ...aksk, HWC_SK: undefined }).message).toBe('AK/SK auth is incomplete: HWC_SK (or HUAWEICLOUD_SDK_SK) is required');
      expect(configError({ ...aksk, HWC_AK: undefined, HWC_SK: undefined, HUAWEICLOUD_SDK_SK: 's' }).message)
        .toBe('AK/SK auth is incomplete: HWC_AK (or HUAWEICLOUD_SDK_AK) is required');
      expect(configError({ ...aksk, HWC_AK: undefined, HWC_SK: undefined, HWC_SECURITY_TOKEN: 't' }).message)
        .toMatch(/HWC_AK \(or HUAWEICLOUD_SDK_AK\) and HWC_SK \(or HUAWEICLOUD_SDK_SK\) are required \(HWC_SECURITY_TOKEN goes with a temporary AK\/SK\)/);
      expect(configError({ ...aksk, GES_PROJECT_ID: undefined }).message).toMatch(/GES_PROJECT_ID \(or HUAWEICLOUD_SDK_PROJECT_ID\) is required with AK\/SK auth/);
      expect(configError({ ...aksk, HWC_AK: 'AK WITH SPACE' }).message).toMatch(/HWC_AK \(or HUAWEICLOUD_SDK_AK\) must be an access key id/);
    });

    it('refuses AK/SK mixed with a token or the IAM password variables, naming what is set', () => {
      // Act
      const withToken = configError({ ...aksk, GES_AUTH_TOKEN: 'tok' });
      const withIam = configError({ ...aksk, HWC_AK: undefined, HUAWEICLOUD_SDK_AK: 'AKSDK', HWC_PASSWORD: 'hunter2-secret' });
      // Assess
      expect(withToken.message).toMatch(/\(GES_AUTH_TOKEN for a token; HWC_AK, HWC_SK for an AK\/SK\)/);
      expect(withIam.message).toMatch(/\(HWC_PASSWORD for an IAM password; HUAWEICLOUD_SDK_AK, HWC_SK for an AK\/SK\)/);
      expect(withIam.message).not.toMatch(/hunter2|sk-secret/);
      expect(configError({ ...aksk, HWC_AK: undefined, HWC_SK: undefined, GES_PROJECT_ID: undefined }).message).toMatch(/^No GES credentials: set GES_AUTH_TOKEN; or HWC_IAM_ENDPOINT.*; or HWC_AK and HWC_SK \(AK\/SK\)$/);
    });
  });

  it('refuses plain http to GES and IAM except on a loopback host (the password and tokens would travel in clear text)', () => {
    // Prepare
    const iam = { GES_ENDPOINT: base.GES_ENDPOINT, ARCHIVE_BUCKET: 'b-1', HWC_USERNAME: 'u', HWC_PASSWORD: 'p', HWC_DOMAIN: 'd', HWC_PROJECT: 'cn-north-4' };
    // Act
    const gesHttp = configError({ ...base, GES_ENDPOINT: 'http://ges.cn-north-4.myhuaweicloud.com' });
    const iamHttp = configError({ ...iam, HWC_IAM_ENDPOINT: 'http://iam.myhuaweicloud.com' });
    // Assess
    expect(gesHttp.code).toBe('CONFIG_INVALID');
    expect(gesHttp.message).toMatch(/GES_ENDPOINT must be an https URL: plain http would send the password and tokens in clear text/);
    expect(iamHttp.message).toMatch(/HWC_IAM_ENDPOINT must be an https URL: plain http/);
    for (const host of ['127.0.0.1:8080', 'localhost:1', '[::1]:9']) {
      expect(loadConfig({ ...base, GES_ENDPOINT: `http://${host}` }).ges.endpoint).toBe(`http://${host}`);
      expect(loadConfig({ ...iam, HWC_IAM_ENDPOINT: `http://${host}/` }).ges.auth).toMatchObject({ iamEndpoint: `http://${host}` });
    }
    expect(loadConfig({ ...base, GES_ENDPOINT: 'https://ges.example.com:8443' }).ges.endpoint).toBe('https://ges.example.com:8443');
  });

  it('accepts host:port entries in DOWNLOAD_ALLOWED_HOSTS and names a bad port', () => {
    const config = loadConfig({ ...base, DOWNLOAD_ALLOWED_HOSTS: 'OBS.example.eu:8443,*.example.com:9443,[::1]:9000,127.0.0.1' });
    expect(config.download.allowedHosts).toEqual(['obs.example.eu:8443', '*.example.com:9443', '[::1]:9000', '127.0.0.1']);
    expect(configError({ ...base, DOWNLOAD_ALLOWED_HOSTS: 'obs.example.eu:99999' }).message).toMatch(/DOWNLOAD_ALLOWED_HOSTS has invalid entries: obs\.example\.eu:99999/);
  });

  it('validates LOG_LEVEL and LOG_FORMAT like every other setting, naming the allowed values', () => {
    // Act
    const level = configError({ ...base, LOG_LEVEL: 'verbose' });
    const both = configError({ ...base, LOG_LEVEL: 'verbose', LOG_FORMAT: 'xml', ARCHIVE_FILE_CONCURRENCY: '0' });
    // Assess
    expect(level.code).toBe('CONFIG_INVALID');
    expect(level.message).toContain('LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent');
    expect(both.message).toMatch(/ARCHIVE_FILE_CONCURRENCY.*LOG_LEVEL.*LOG_FORMAT must be one of pretty, json/);
    expect(() => loadStorageConfig({ ARCHIVE_BUCKET: 'b-1', LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT must be one of pretty, json/);
    expect(loadLogSettings({ LOG_LEVEL: ' DEBUG ', LOG_FORMAT: 'JSON' })).toEqual({ level: 'debug', format: 'json' });
    expect(loadLogSettings({ LOG_LEVEL: '' })).toEqual({ level: undefined, format: 'pretty' });
  });

  it('normalises the prefix and host list', () => {
    const config = loadConfig({ ...base, ARCHIVE_PREFIX: 'backups', DOWNLOAD_ALLOWED_HOSTS: ' A.Example.com , *.obs.example.eu ', S3_FORCE_PATH_STYLE: 'true' });
    expect(config.archive.prefix).toBe('backups/');
    expect(config.download.allowedHosts).toEqual(['a.example.com', '*.obs.example.eu']);
    expect(config.s3.forcePathStyle).toBe(true);
  });
});

describe('loadConfig: the copy settings and their flags', () => {
  it('has no bandwidth limit by default, and reads ARCHIVE_BWLIMIT in rclone syntax', () => {
    expect(loadConfig(base).download.maxBytesPerSecond).toBeUndefined();
    expect(loadConfig({ ...base, ARCHIVE_BWLIMIT: '20M' }).download.maxBytesPerSecond).toBe(20 * MiB);
    expect(loadConfig({ ...base, ARCHIVE_BWLIMIT: 'off' }).download.maxBytesPerSecond).toBeUndefined();
    expect(configError({ ...base, ARCHIVE_BWLIMIT: '20' }).message).toMatch(/ARCHIVE_BWLIMIT must be a rate from 1k to 1T per second with a unit/);
  });

  it('lets each flag override its variable, "off" included', () => {
    // Prepare
    const env = { ...base, ARCHIVE_FILE_CONCURRENCY: '2', ARCHIVE_STREAMS: '3', ARCHIVE_PART_SIZE_MB: '5', ARCHIVE_BWLIMIT: '1M' };
    // Act
    const plain = loadConfig(env);
    const flagged = loadConfig(env, { files: 9, streams: 12, partSizeBytes: 24 * MiB, maxBytesPerSecond: 0 });
    // Assess
    expect(plain.concurrency).toMatchObject({ files: 2, streams: 3 });
    expect(plain.partSizeBytes).toBe(5 * MiB);
    expect(plain.download.maxBytesPerSecond).toBe(MiB);
    expect(flagged.concurrency).toMatchObject({ files: 9, streams: 12 });
    expect(flagged.partSizeBytes).toBe(24 * MiB);
    expect(flagged.download.maxBytesPerSecond).toBeUndefined();
  });

  it('still names the variable (not a flag) for a bad environment value', () => {
    expect(configError({ ...base, ARCHIVE_STREAMS: '33' }).message).toMatch(/ARCHIVE_STREAMS must be a whole number from 1 to 32/);
    expect(configError({ ...base, ARCHIVE_PART_SIZE_MB: '4' }).message).toMatch(/ARCHIVE_PART_SIZE_MB must be a whole number from 5 to 512/);
  });

  it('shards files larger than ARCHIVE_SHARD_MB (default 8 GiB; 0 never), naming the variable when it is bad', () => {
    expect(loadConfig(base).fanout.shardBytes).toBe(8192 * MiB);
    expect(loadConfig({ ...base, ARCHIVE_SHARD_MB: '5' }).fanout.shardBytes).toBe(5 * MiB);
    expect(loadConfig({ ...base, ARCHIVE_SHARD_MB: '0' }).fanout.shardBytes).toBe(0);
    expect(configError({ ...base, ARCHIVE_SHARD_MB: '-1' }).message).toMatch(/ARCHIVE_SHARD_MB must be a whole number from 0 to 5242880/);
    expect(configError({ ...base, ARCHIVE_SHARD_MB: '1.5' }).message).toMatch(/ARCHIVE_SHARD_MB/);
  });
});
