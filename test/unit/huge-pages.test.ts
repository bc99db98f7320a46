// bin/huge-pages.js: when the command starts again with huge pages for its part buffers.
// test/integration/built-cli.test.ts checks the bin does it (same PID, the tunable set).
import { HUGE_PAGES_TUNABLE, hugePagesEnv } from '../../bin/huge-pages.js';

const MADVISE = 'always [madvise] never\n';

function host(over: Partial<Parameters<typeof hugePagesEnv>[0]> = {}): Parameters<typeof hugePagesEnv>[0] {
  return {
    platform: 'linux',
    args: ['archive', '--graph', 'g', '--backup', 'b'],
    env: { PATH: '/usr/bin' },
    thpModeText: () => MADVISE,
    glibcVersion: () => '2.36',
    ...over,
  };
}

describe('hugePagesEnv', () => {
  it('asks for huge pages for run and archive on Linux with glibc >= 2.35 and THP in madvise mode, keeping the rest of the environment', () => {
    expect(hugePagesEnv(host())).toEqual({ PATH: '/usr/bin', GLIBC_TUNABLES: `${HUGE_PAGES_TUNABLE}=1` });
    expect(hugePagesEnv(host({ args: ['--log-level', 'warn', 'run', '--manifest', 'm.json'], glibcVersion: () => '2.35' }))?.GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=1');
    expect(hugePagesEnv(host({ glibcVersion: () => '3.0' }))?.GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=1');
  });

  it('adds to tunables the user set, and leaves the hugetlb tunable alone when the user set it (the way to turn this off)', () => {
    expect(hugePagesEnv(host({ env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } }))?.GLIBC_TUNABLES).toBe('glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1');
    expect(hugePagesEnv(host({ env: { GLIBC_TUNABLES: '' } }))?.GLIBC_TUNABLES).toBe('glibc.malloc.hugetlb=1');
    expect(hugePagesEnv(host({ env: { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' } }))).toBeUndefined();
    expect(hugePagesEnv(host({ env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1' } }))).toBeUndefined();
  });

  it('goes on in the same process for the commands that copy nothing, for help and for dry runs', () => {
    for (const args of [[], ['--help'], ['--version'], ['list'], ['verify', '--graph', 'g'], ['restore', '--to', 'd'], ['archive', '--help'], ['run', '-h'], ['run', '--dry-run']]) {
      expect({ args, env: hugePagesEnv(host({ args })) }).toEqual({ args, env: undefined });
    }
  });

  it('goes on in the same process when huge pages would not help or cannot be asked for', () => {
    const cases: [string, Partial<Parameters<typeof hugePagesEnv>[0]>][] = [
      ['not Linux', { platform: 'darwin' }],
      ['THP always: malloc gets them anyway', { thpModeText: () => '[always] madvise never\n' }],
      ['THP never', { thpModeText: () => 'always madvise [never]\n' }],
      ['no THP file', { thpModeText: () => undefined }],
      ['glibc 2.34 has no such tunable', { glibcVersion: () => '2.34' }],
      ['musl: no glibc version', { glibcVersion: () => undefined }],
    ];
    for (const [why, over] of cases) expect({ why, env: hugePagesEnv(host(over)) }).toEqual({ why, env: undefined });
  });

  it('reads the THP mode and the glibc version only when everything cheaper says yes', () => {
    const reads: string[] = [];
    const thpModeText = (): string => { reads.push('thp'); return MADVISE; };
    const glibcVersion = (): string => { reads.push('glibc'); return '2.36'; };

    hugePagesEnv(host({ args: ['list'], thpModeText, glibcVersion }));
    hugePagesEnv(host({ platform: 'darwin', thpModeText, glibcVersion }));
    hugePagesEnv(host({ thpModeText: () => 'always madvise [never]', glibcVersion }));

    expect(reads).toEqual([]);
  });
});
