import { CHUNK, GeneratedContent } from './content.js';
import { parseRange } from './obs-server.js';
import { formatLinkExpiredTime } from './ges-server.js';

const collect = (c: GeneratedContent, start: number, end: number): Buffer => Buffer.concat([...c.pieces(start, end)]);

describe('GeneratedContent', () => {
  const content = new GeneratedContent(['g', 'b', 'f', ''], 2 * CHUNK + 77, new Date(0));

  it('yields any range equal to the same slice of the whole', () => {
    // Prepare
    const whole = collect(content, 0, content.bytes);
    const ranges: [number, number][] = [[0, 1], [31, 33], [CHUNK - 5, CHUNK + 40], [CHUNK * 2, content.bytes], [7, content.bytes + 100]];
    for (const [start, end] of ranges) {
      // Act
      const part = collect(content, start, end);
      // Assess
      expect(part.equals(whole.subarray(start, Math.min(end, content.bytes)))).toBe(true);
    }
  });

  it('yields pieces of at most 1 MiB and the advertised total', () => {
    const pieces = [...content.pieces(0, content.bytes)];
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(CHUNK);
    expect(pieces.reduce((n, p) => n + p.length, 0)).toBe(content.bytes);
  });

  it('stamps each chunk with its counter', () => {
    const whole = collect(content, 0, content.bytes);
    expect(whole.readBigUInt64BE(CHUNK)).toBe(1n);
    expect(whole.readBigUInt64BE(2 * CHUNK)).toBe(2n);
  });
});

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', { kind: 'partial', start: 0, end: 10 }],
    ['bytes=5-', { kind: 'partial', start: 5, end: 100 }],
    ['bytes=-10', { kind: 'partial', start: 90, end: 100 }],
    ['bytes=-1000', { kind: 'partial', start: 0, end: 100 }],
    ['bytes=90-1000', { kind: 'partial', start: 90, end: 100 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=9-5', { kind: 'full' }],
    ['bytes=0-1,5-6', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
  ])('%s of 100 bytes', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });
});

describe('formatLinkExpiredTime', () => {
  const t = Date.UTC(2024, 7, 16, 2, 15, 14) / 1000;
  it.each([
    ['offset-no-colon', '2024-08-16T10:15:14+0800'],
    ['zoneless', '2024-08-16T02:15:14'],
    ['z', '2024-08-16T02:15:14Z'],
    ['malformed', '2024-08-016T10:15:14+0800'],
    ['absent', undefined],
  ] as const)('%s', (format, expected) => {
    expect(formatLinkExpiredTime(t, format)).toBe(expected);
  });
});
