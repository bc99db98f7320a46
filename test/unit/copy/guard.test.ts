import { ErrorCodes, type ArchiverError } from '../../../lib/errors.js';
import { assertAllowedLink, assertSafeFileName } from '../../../lib/copy/guard.js';
import { isLoopbackHost, parseHostEntry } from '../../../lib/hosts.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as ArchiverError).code;
  }
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a throw');
}

describe('assertSafeFileName', () => {
  it.each([
    'data.bin', 'graph-0001.tar.gz', '43e4feaab48f11e89039fa163ebaa7e4br01.xxx', '...', '.hidden',
    '图数据_备份.xml', 'name with inner spaces.txt', 'a'.repeat(255), 'é'.repeat(127), 'Ünïcödé-😀.bin', '100%.txt',
  ])('accepts the safe name %j', (name) => {
    // Act + Assess
    expect(codeOf(() => assertSafeFileName(name))).toBeUndefined();
  });

  it.each([
    ['empty', ''], ['dot', '.'], ['dot-dot', '..'], ['traversal', '../x'], ['nested', 'a/b'], ['absolute', '/etc/passwd'],
    ['backslash', 'a\\b'], ['windows traversal', '..\\x'], ['NUL', 'a\u0000b'], ['newline', 'a\nb'], ['tab', 'a\tb'],
    ['DEL', 'a\u007fb'], ['C1 control', 'a\u0085b'], ['leading space', ' a'], ['trailing space', 'a '],
    ['trailing no-break space', 'a\u00a0'], ['bidi override', 'evil\u202Etxt.exe'], ['BOM', '\ufeffa'],
    ['encoded dot-dot', '%2e%2e'], ['encoded slash', 'a%2Fb'], ['encoded backslash', 'a%5cb'],
    ['lone surrogate', 'a\ud800b'], ['256 bytes', 'a'.repeat(256)], ['256 UTF-8 bytes', 'é'.repeat(128)],
    ['line separator', 'a\u2028b'],
  ])('refuses %s', (_label, name) => {
    // Act + Assess
    expect(codeOf(() => assertSafeFileName(name))).toBe(ErrorCodes.UnsafeFileName);
  });
});

describe('assertAllowedLink', () => {
  const allowed = ['*.myhuaweicloud.com', 'obs.example.eu', 'localhost', '127.0.0.1:9000', '[::1]'];

  it.each([
    'https://bucket.obs.cn-north-4.myhuaweicloud.com/key?AccessKeyId=A&Expires=1&Signature=x%2By%3D',
    'https://bucket.obs.cn-north-4.myhuaweicloud.com:443/key',
    'https://OBS.CN-NORTH-4.MyHuaweiCloud.com/key',
    'https://bucket.obs.cn-north-4.myhuaweicloud.com./key',
    'https://obs.example.eu/b/k',
    'https://obs.example.eu:443/b/k',
    'http://localhost:8080/b/k',
    'http://127.0.0.1:9000/b/k',
    'http://[::1]:1234/b/k',
  ])('allows %s', (url) => {
    // Act + Assess
    expect(codeOf(() => assertAllowedLink(url, allowed))).toBeUndefined();
  });

  it.each([
    ['a host not in the list', 'https://evil.example.com/x'],
    ['the wildcard suffix itself', 'https://myhuaweicloud.com/x'],
    ['a look-alike suffix', 'https://evilmyhuaweicloud.com/x'],
    ['a suffix in the middle', 'https://obs.myhuaweicloud.com.evil.com/x'],
    ['a subdomain of an exact entry', 'https://a.obs.example.eu/x'],
    ['http to a non-loopback allowed host', 'http://bucket.obs.cn-north-4.myhuaweicloud.com/x'],
    ['http to a loopback host not in the list', 'http://127.0.0.2/x'],
    ['userinfo', 'https://user:pw@bucket.obs.cn-north-4.myhuaweicloud.com/x'],
    ['a user name only', 'https://user@bucket.obs.cn-north-4.myhuaweicloud.com/x'],
    ['an empty userinfo', 'https://@bucket.obs.cn-north-4.myhuaweicloud.com/x'],
    ['userinfo hiding the real host', 'https://bucket.obs.cn-north-4.myhuaweicloud.com@evil.com/x'],
    ['ftp', 'ftp://obs.example.eu/x'],
    ['file', 'file:///etc/passwd'],
    ['a relative URL', '/b/k'],
    ['garbage', 'not a url'],
    ['an IPv4 literal', 'https://10.0.0.1/x'],
    ['an IP matched against a wildcard', 'https://1.2.3.4/x'],
    ['an IPv6 literal', 'https://[2001:db8::1]/x'],
    ['another port of an entry without a port', 'https://obs.example.eu:8443/b/k'],
    ['another port of a wildcard entry without a port', 'https://bucket.obs.cn-north-4.myhuaweicloud.com:8080/key'],
    ['another port of a loopback entry with a port', 'http://127.0.0.1:1234/b/k'],
  ])('refuses %s', (_label, url) => {
    // Act + Assess
    expect(codeOf(() => assertAllowedLink(url, allowed))).toBe(ErrorCodes.LinkRefused);
  });

  it('refuses everything with an empty list', () => {
    expect(codeOf(() => assertAllowedLink('https://obs.example.eu/x', []))).toBe(ErrorCodes.LinkRefused);
  });

  it('names the host but never the query string in its message', () => {
    // Prepare
    const url = 'https://evil.example.com/path?AccessKeyId=AKSECRET&Signature=SIGSECRET';
    // Act
    const message = messageOf(() => assertAllowedLink(url, allowed));
    // Assess
    expect(message).toContain('evil.example.com');
    expect(message).not.toMatch(/AKSECRET|SIGSECRET|\?/);
  });

  it('allows the port an entry names, only that one; without a port, https on 443 only (any port of a loopback host)', () => {
    // Act + Assess
    expect(codeOf(() => assertAllowedLink('https://obs.example.eu:8443/x', ['obs.example.eu:8443']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('https://obs.example.eu/x', ['obs.example.eu:8443']))).toBe(ErrorCodes.LinkRefused);
    expect(codeOf(() => assertAllowedLink('https://a.b.example.com:9443/x', ['*.example.com:9443']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('https://a.b.example.com:9/x', ['*.example.com:443']))).toBe(ErrorCodes.LinkRefused);
    expect(codeOf(() => assertAllowedLink('https://a.b.example.com/x', ['*.example.com:443']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('http://127.0.0.1:1/x', ['127.0.0.1']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('https://localhost:4443/x', ['localhost']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('http://[::1]:9000/x', ['[::1]:9000']))).toBeUndefined();
    expect(codeOf(() => assertAllowedLink('http://[::1]:9001/x', ['[::1]:9000']))).toBe(ErrorCodes.LinkRefused);
  });

  it('names the host and the port it refuses, and the entry that would allow it', () => {
    // Act
    const message = messageOf(() => assertAllowedLink('https://obs.example.eu:8443/x?Signature=SIG', ['obs.example.eu']));
    // Assess
    expect(message).toContain('"obs.example.eu" uses port 8443');
    expect(message).toContain('add "obs.example.eu:8443"');
    expect(message).not.toContain('SIG');
  });

  it('allows http only to loopback hosts named exactly, not through a wildcard', () => {
    expect(codeOf(() => assertAllowedLink('http://a.localhost/x', ['*.localhost']))).toBe(ErrorCodes.LinkRefused);
  });

  it('parses allow-list entries with and without ports, and refuses malformed ones', () => {
    expect(parseHostEntry(' OBS.Example.EU:8443 ')).toEqual({ host: 'obs.example.eu', wildcard: false, port: 8443 });
    expect(parseHostEntry('*.myhuaweicloud.com')).toEqual({ host: 'myhuaweicloud.com', wildcard: true, port: undefined });
    expect(parseHostEntry('[::1]:9000')).toEqual({ host: '::1', wildcard: false, port: 9000 });
    expect(parseHostEntry('::1')).toEqual({ host: '::1', wildcard: false, port: undefined });
    expect(['bad host', 'host:0', 'host:65536', 'host:', 'host:8x', '*.', '*.1.2.3.4', '[::1', '[::1]x', 'a..b', 'https://host'].map(parseHostEntry))
      .toEqual(Array.from({ length: 11 }, () => undefined));
  });

  it('knows the loopback hosts', () => {
    expect(['localhost', '127.0.0.1', '127.9.8.7', '::1', '[::1]'].map(isLoopbackHost)).toEqual([true, true, true, true, true]);
    expect(['128.0.0.1', 'localhost.evil.com', '::2', '0.0.0.0'].map(isLoopbackHost)).toEqual([false, false, false, false]);
  });
});
