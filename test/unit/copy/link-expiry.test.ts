import { linkExpiresAt, parseLinkExpiredTime, urlExpiresAt } from '../../../lib/links/link-expiry.js';

const at = (iso: string): number => Date.parse(iso);

describe('parseLinkExpiredTime', () => {
  it.each([
    ['offset without colon (SDK comment)', '2018-08-16T10:15:14+0800', '2018-08-16T02:15:14Z'],
    ['offset with colon', '2018-08-16T10:15:14+08:00', '2018-08-16T02:15:14Z'],
    ['hour-only offset', '2018-08-16T10:15:14+08', '2018-08-16T02:15:14Z'],
    ['negative offset', '2018-08-16T10:15:14-0530', '2018-08-16T15:45:14Z'],
    ['+0000 (DDS copy)', '2018-08-16T10:15:14+0000', '2018-08-16T10:15:14Z'],
    ['Z', '2018-08-16T10:15:14Z', '2018-08-16T10:15:14Z'],
    ['lower-case z', '2018-08-16t10:15:14z', '2018-08-16T10:15:14Z'],
    ['zoneless (2025 doc) is UTC', '2018-08-16T10:15:14', '2018-08-16T10:15:14Z'],
    ['space instead of T', '2018-08-16 10:15:14', '2018-08-16T10:15:14Z'],
    ['fractional seconds', '2018-08-16T10:15:14.123456Z', '2018-08-16T10:15:14.123Z'],
    ['fractional seconds with offset', '2018-08-16T10:15:14.5+0800', '2018-08-16T02:15:14.500Z'],
    ['3-digit day (documented example)', '2018-08-016T10:15:14+0800', '2018-08-16T02:15:14Z'],
    ['no seconds', '2018-08-16T10:15', '2018-08-16T10:15:00Z'],
    ['surrounding whitespace', '  2018-08-16T10:15:14Z ', '2018-08-16T10:15:14Z'],
    ['epoch seconds', '1534414514', '2018-08-16T10:15:14Z'],
    ['epoch milliseconds', '1534414514000', '2018-08-16T10:15:14Z'],
  ])('reads %s', (_label, raw, iso) => {
    // Act + Assess
    expect(parseLinkExpiredTime(raw)).toBe(at(iso));
  });

  it.each([
    undefined, '', 'tomorrow', '2018-13-01T00:00:00Z', '2018-02-30T00:00:00Z', '2018-08-316T10:15:14Z', '2018-08-000T10:15:14Z',
    '2018-08-16T24:00:00Z', '2018-08-16T10:60:00Z', '2018-08-16T10:15:14+1500', '2018-08-16T10:15:14+0860', '2018-08-16',
    '16/08/2018 10:15:14', '2018-08-16T10:15:14 Europe/Paris',
  ])('returns undefined for %j and does not throw', (raw) => {
    expect(parseLinkExpiredTime(raw)).toBeUndefined();
  });

  it('never throws on hostile input', () => {
    for (const raw of ['\u0000', '9'.repeat(400), '2018-08-16T10:15:14.' + '9'.repeat(5000), {} as unknown as string]) {
      expect(() => parseLinkExpiredTime(raw)).not.toThrow();
    }
  });
});

describe('linkExpiresAt', () => {
  const receivedAt = at('2024-05-01T12:00:00Z');
  const ges = '2024-05-01T21:00:00+0800'; // 13:00Z

  it('uses the OBS-native V2 Expires first', () => {
    const url = 'https://b.obs.cn-north-4.myhuaweicloud.com/k?AccessKeyId=AK&Expires=1714566000&Signature=a%2Bb%3D';
    expect(linkExpiresAt(url, ges, receivedAt)).toBe(1_714_566_000_000);
  });

  it('uses the S3 V2 Expires', () => {
    const url = 'https://b.obs.x.myhuaweicloud.com:443/p/f.rdb?AWSAccessKeyId=AK&Expires=1566308915&Signature=s3I%2Bb%3D';
    expect(urlExpiresAt(url)).toBe(1_566_308_915_000);
  });

  it('uses S3 V4 X-Amz-Date + X-Amz-Expires', () => {
    const url = 'https://b.obs.x.myhuaweicloud.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240501%2Fr%2Fs3%2Faws4_request'
      + '&X-Amz-Date=20240501T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=ab';
    expect(linkExpiresAt(url, ges, receivedAt)).toBe(at('2024-05-01T12:15:00Z'));
  });

  it('reads the parameters case-insensitively', () => {
    expect(urlExpiresAt('https://h/k?x-amz-date=20240501T120000Z&x-amz-expires=60')).toBe(at('2024-05-01T12:01:00Z'));
  });

  it('falls back to link_expired_time when the URL has no expiry', () => {
    expect(linkExpiresAt('https://obs.domainname.com/rdsbucket.username.1/xxxxxx', ges, receivedAt)).toBe(at('2024-05-01T13:00:00Z'));
  });

  it('falls back to link_expired_time when the URL expiry is not a number', () => {
    expect(linkExpiresAt('https://h/k?Expires=Wed%2C%2001%20May', ges, receivedAt)).toBe(at('2024-05-01T13:00:00Z'));
  });

  it('falls back to receivedAt + 3,600 s when nothing parses', () => {
    expect(linkExpiresAt('https://h/k', 'garbage', receivedAt)).toBe(receivedAt + 3_600_000);
    expect(linkExpiresAt('https://h/k', undefined, receivedAt)).toBe(receivedAt + 3_600_000);
    expect(linkExpiresAt('not a url', undefined, receivedAt)).toBe(receivedAt + 3_600_000);
  });

  it('ignores a link_expired_time already past on arrival (a misread zone)', () => {
    expect(linkExpiresAt('https://h/k', '2024-05-01T12:30:00+0800', receivedAt)).toBe(receivedAt + 3_600_000);
  });
});
