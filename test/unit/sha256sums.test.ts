import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSha256Sums, parseSha256Sums, sha256SumsDisagreement } from '../../lib/store/sha256sums.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('SHA256SUMS', () => {
  it('is what the system sha256sum -c accepts, and it fails on a changed file', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'sums-'));
    try {
      const files = { 'b.bin': 'bee', 'a file with spaces.txt': 'a', 'empty.txt': '', 'ünïcode.dat': 'u' };
      for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
      writeFileSync(join(dir, 'SHA256SUMS'), formatSha256Sums(Object.entries(files).map(([name, body]) => ({ name, sha256: sha(body) }))));

      // Act
      const ok = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
      writeFileSync(join(dir, 'b.bin'), 'bea');
      let failed = '';
      try {
        execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch (err) {
        failed = (err as { stdout: string }).stdout;
      }

      // Assess
      expect(ok.trim().split('\n').sort()).toEqual(['a file with spaces.txt: OK', 'b.bin: OK', 'empty.txt: OK', 'ünïcode.dat: OK']);
      expect(failed).toContain('b.bin: FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses its own output and sha256sum\'s binary mode, refusing anything else', () => {
    const text = formatSha256Sums([{ name: 'x', sha256: sha('x') }]) + `${sha('y').toUpperCase()} *y\n`;
    const parsed = parseSha256Sums(text);
    expect(parsed.ok && [...parsed.entries]).toEqual([['x', sha('x')], ['y', sha('y')]]);
    expect(parseSha256Sums(`${sha('x')} x\n`)).toMatchObject({ ok: false, problem: expect.stringContaining('line 1') as string });
    expect(parseSha256Sums(`${sha('x')}  x\n${sha('x')}  x\n`)).toMatchObject({ ok: false, problem: expect.stringContaining('twice') as string });
  });

  it('says where it disagrees with manifest.json', () => {
    const files = [{ name: 'a', sha256: sha('a') }, { name: 'b', sha256: sha('b') }];
    const same = new Map(files.map((f) => [f.name, f.sha256]));
    expect(sha256SumsDisagreement(same, files)).toBeUndefined();
    expect(sha256SumsDisagreement(new Map([['a', sha('a')]]), files)).toMatch(/^b is listed in manifest.json but not in SHA256SUMS/);
    expect(sha256SumsDisagreement(new Map([...same, ['c', sha('c')]]), files)).toMatch(/^c is listed in SHA256SUMS but not in manifest.json/);
    expect(sha256SumsDisagreement(new Map([['a', sha('a')], ['b', sha('x')]]), files)).toMatch(/^b: SHA256SUMS says/);
  });
});
