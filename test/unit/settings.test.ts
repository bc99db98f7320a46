import { FILE_CONCURRENCY, parseBwlimit, parsePartSize, parseSize, parseWhole } from '../../lib/settings.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('rclone-style sizes', () => {
  it.each([
    ['16M', 16 * MiB], ['64MiB', 64 * MiB], ['64mb', 64 * MiB], ['512k', 512 * KiB], ['512KiB', 512 * KiB],
    ['1.5G', 1.5 * 1024 * MiB], ['100B', 100], [' 8 M ', 8 * MiB], ['2T', 2 * 1024 * 1024 * MiB],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseSize(text, 'b')).toBe(bytes);
  });

  it('reads a number alone in the unit given, and refuses what is not a size', () => {
    expect(parseSize('16', 'm')).toBe(16 * MiB);
    expect(parseSize('16', 'b')).toBe(16);
    for (const bad of ['', 'M', '16X', '-5M', '1e3M', '16 MiBs', 'sixteen']) expect(parseSize(bad, 'm')).toBeUndefined();
  });
});

describe('the flags\' parsers', () => {
  it('--part-size: 5 MiB to 512 MiB, a number alone in MiB like ARCHIVE_PART_SIZE_MB', () => {
    expect(parsePartSize('16M', '--part-size')).toEqual({ ok: true, value: 16 * MiB });
    expect(parsePartSize('16', '--part-size')).toEqual({ ok: true, value: 16 * MiB });
    expect(parsePartSize('512MiB', '--part-size')).toEqual({ ok: true, value: 512 * MiB });
    expect(parsePartSize('4M', '--part-size')).toEqual({ ok: false, message: '--part-size must be a size from 5 MiB to 512 MiB, e.g. 16M or 64MiB (a number alone is MiB) (got "4M")' });
    expect(parsePartSize('513M', '--part-size').ok).toBe(false);
  });

  it('--bwlimit: a rate with a unit, off or 0 for none (0); a bare number is refused', () => {
    expect(parseBwlimit('10M', '--bwlimit')).toEqual({ ok: true, value: 10 * MiB });
    expect(parseBwlimit('512k', '--bwlimit')).toEqual({ ok: true, value: 512 * KiB });
    expect(parseBwlimit('off', '--bwlimit')).toEqual({ ok: true, value: 0 });
    expect(parseBwlimit('0', '--bwlimit')).toEqual({ ok: true, value: 0 });
    for (const bad of ['10', '100B', 'fast', '', '-1M']) expect(parseBwlimit(bad, '--bwlimit').ok).toBe(false);
  });

  it('whole numbers name the flag, the range and the value', () => {
    expect(parseWhole('8', FILE_CONCURRENCY, '--transfers')).toEqual({ ok: true, value: 8 });
    expect(parseWhole('65', FILE_CONCURRENCY, '--transfers')).toEqual({ ok: false, message: '--transfers must be a whole number from 1 to 64 (got "65")' });
    expect(parseWhole('2.5', FILE_CONCURRENCY, '--transfers').ok).toBe(false);
  });
});
