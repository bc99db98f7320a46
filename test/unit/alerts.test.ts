import { buildAlert, failuresOfReport, MAX_SUBJECT_CHARS, publishRunAlert } from '../../lib/alerts/alert.js';
import type { RunReport } from '../../lib/archive/types.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';

function report(backups: RunReport['backups']): RunReport {
  return {
    runId: '20261127T133000Z-1a2b3c4d', trigger: 'schedule', dryRun: false, startedAt: '', finishedAt: '', durationMs: 1,
    backups, reportKey: 'ges-backups/_runs/20261127T133000Z-1a2b3c4d.json',
    totals: { archived: 0, skipped: 0, failed: 0, planned: 0, queued: 0, cancelled: 0, files: 0, bytes: 0 },
  };
}

const ok = (backupId: string) => ({ graphId: 'g1', backupId, status: 'archived' as const, files: 1, bytes: 1 });
const bad = (backupId: string, message: string) => ({
  graphId: 'g1', backupId, status: 'failed' as const, files: 0, bytes: 0, error: { code: ErrorCodes.LinkExpired, message },
});

describe('alerts', () => {
  it('says how many backups of the run failed, with one entry per failed backup', () => {
    // Prepare
    const r = report([ok('b1'), bad('b2', 'link expired'), ok('b3'), bad('b4', 'link expired'), ok('b5')]);

    // Act
    const { subject, body } = buildAlert(failuresOfReport(r), 'scheduledRun');

    // Assess
    expect(subject).toBe('ges-archiver: 2 of 5 backups failed (run 20261127T133000Z-1a2b3c4d)');
    expect(body).toEqual({
      runId: r.runId, source: 'scheduledRun', summary: '2 of 5 backups failed', reportKey: r.reportKey,
      failures: [
        { graphId: 'g1', backupId: 'b2', code: 'LINK_EXPIRED', message: 'link expired' },
        { graphId: 'g1', backupId: 'b4', code: 'LINK_EXPIRED', message: 'link expired' },
      ],
    });
  });

  it('names files for worker failures', () => {
    // Act
    const { subject, body } = buildAlert({
      runId: 'r1', failures: [{ graphId: 'g', backupId: 'b', file: 'edges.tar', code: ErrorCodes.DownloadFailed, message: 'HTTP 500' }],
    }, 'copyWorker');

    // Assess
    expect(subject).toBe('ges-archiver: 1 file of 1 backup failed (run r1)');
    expect(body.failures[0]).toEqual({ graphId: 'g', backupId: 'b', file: 'edges.tar', code: 'DOWNLOAD_FAILED', message: 'HTTP 500' });
  });

  it('never carries a link query string or an inline token', () => {
    // Prepare
    const r = report([bad('b1', 'GET https://bucket.obs.myhuaweicloud.com/g/b/f?AccessKeyId=AK&Signature=SIG%2B failed; X-Auth-Token: tok123')]);

    // Act
    const text = JSON.stringify(buildAlert(failuresOfReport(r), 'cli'));

    // Assess
    expect(text).not.toMatch(/AccessKeyId|SIG|tok123/);
    expect(text).toContain('https://bucket.obs.myhuaweicloud.com/g/b/f?[REDACTED]');
  });

  it('keeps the subject within SNS limits and the body bounded', () => {
    // Prepare
    const failures = Array.from({ length: 80 }, (_, i) => ({
      graphId: 'g'.repeat(100), backupId: `b${i}`, file: 'ü\n'.repeat(10), code: ErrorCodes.Internal, message: 'm'.repeat(5000),
    }));

    // Act
    const { subject, body } = buildAlert({ runId: `r-${'x'.repeat(120)}`, failures }, 'copyWorker');

    // Assess
    expect(subject.length).toBeLessThanOrEqual(MAX_SUBJECT_CHARS);
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.endsWith('...')).toBe(true);
    expect(body.failures).toHaveLength(50);
    expect(body.omittedFailures).toBe(30);
    expect(body.failures[0]!.message.length).toBeLessThanOrEqual(1000);
  });

  it('publishes nothing without a topic or without failures, and never throws when SNS fails', async () => {
    // Prepare
    const failing = report([bad('b1', 'x')]);
    const brokenSns = { send: () => Promise.reject(Object.assign(new Error('boom'), { name: 'AuthorizationError', $metadata: { httpStatusCode: 403 } })) };
    const logger = silentLogger();

    // Act
    const noTopic = await publishRunAlert({ logger }, failing, { source: 'cli' });
    const nothingFailed = await publishRunAlert({ logger, topicArn: 'arn:aws:sns:us-east-1:1:t', sns: brokenSns as never }, report([ok('b1')]), { source: 'cli' });
    const snsDown = await publishRunAlert({ logger, topicArn: 'arn:aws:sns:us-east-1:1:t', sns: brokenSns as never }, failing, { source: 'cli' });

    // Assess
    expect([noTopic, nothingFailed, snsDown]).toEqual([false, false, false]);
  });
});
