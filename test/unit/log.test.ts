import { Writable } from 'node:stream';
import { createLogger, redactString, redactValue, REDACTED } from '../../lib/log.js';
import { ArchiverError } from '../../lib/errors.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, stream };
}

const link = 'https://bucket.obs.cn-north-4.myhuaweicloud.com/a/b.bin?AccessKeyId=AK123&Expires=1532779451&Signature=0Aky%2Blf43%3D';

describe('redaction', () => {
  it('drops the query string of every URL in free text', () => {
    const out = redactString(`GET ${link} failed`);
    expect(out).toBe(`GET https://bucket.obs.cn-north-4.myhuaweicloud.com/a/b.bin?${REDACTED} failed`);
    expect(out).not.toContain('Signature');
  });

  it('replaces secret-named fields and inline header values', () => {
    const out = redactValue({
      password: 'hunter2', token: 'abc', headers: { 'X-Auth-Token': 'abc', 'content-type': 'json' }, count: 3, tokenRequests: 5,
      note: 'sent X-Auth-Token: abc.def and password=hunter2',
    }) as Record<string, unknown>;
    expect(JSON.stringify(out)).not.toMatch(/hunter2|abc/);
    expect(out['count']).toBe(3);
    expect(out['tokenRequests']).toBe(5);
  });

  it('redacts AK/SK secrets: the SK and security token by any of their names, and the signature', () => {
    // Act
    const out = redactValue({
      HWC_SK: 'sk-one', HUAWEICLOUD_SDK_SK: 'sk-two', secretKey: 'sk-three', HWC_SECURITY_TOKEN: 'tok-four', HWC_AK: 'AKVISIBLE', disk: 'kept',
      note: 'HWC_SK=sk-five HUAWEICLOUD_SDK_SECURITY_TOKEN = tok-six', message: 'Secret ges/huawei is invalid: HWC_SK: is required',
      authorization: 'SDK-HMAC-SHA256 Access=AKVISIBLE, SignedHeaders=host;x-sdk-date, Signature=0123abcd',
      line: 'sent Authorization: SDK-HMAC-SHA256 Access=AKVISIBLE, SignedHeaders=host, Signature=0123abcd',
    }) as Record<string, unknown>;
    // Assess
    expect(JSON.stringify(out)).not.toMatch(/sk-one|sk-two|sk-three|tok-four|sk-five|tok-six|0123abcd/);
    expect(out['HWC_AK']).toBe('AKVISIBLE');
    expect(out['disk']).toBe('kept');
    expect(out['message']).toBe('Secret ges/huawei is invalid: HWC_SK: is required');
  });

  it('redacts error messages, causes and details', () => {
    const err = new ArchiverError('DOWNLOAD_FAILED', `download of ${link} failed`, {
      cause: new Error(`socket hang up for ${link}`), details: { url: link },
    });
    const text = JSON.stringify(redactValue({ err }));
    expect(text).toContain('DOWNLOAD_FAILED');
    expect(text).not.toContain('AK123');
    expect(text).not.toContain('Signature');
  });

  it('is applied by the logger itself', () => {
    // Prepare
    const { lines, stream } = capture();
    const logger = createLogger({ destination: stream });
    // Act
    logger.info({ url: link, password: 'hunter2', nested: { authorization: 'Bearer x' } }, 'downloading');
    logger.child({ token: 'child-secret' }).warn({ err: new Error(`boom ${link}`) }, 'failed');
    // Assess
    const all = lines.join('');
    expect(all).toContain('downloading');
    expect(all).not.toMatch(/AK123|hunter2|Bearer x|child-secret|Signature=/);
  });
});
