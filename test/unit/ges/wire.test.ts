import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import {
  backupFilesSchema,
  backupPageSchema,
  normalizeBackupFiles,
  normalizeBackupPage,
  parseIamTime,
  parseJsonBody,
  validateBody,
} from '../../../lib/ges/wire.js';

const OP = 'the backup list of graph g1 (offset 0)';

function page(json: unknown) {
  return normalizeBackupPage(validateBody(backupPageSchema, json, OP), 'g1');
}

function files(json: unknown) {
  return normalizeBackupFiles(validateBody(backupFilesSchema, json, 'backup-files for graph g1 backup b1'));
}

function thrown(fn: () => unknown): ArchiverError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ArchiverError) return err;
    throw err;
  }
  throw new Error('expected an ArchiverError');
}

describe('backup list pages', () => {
  it('normalizes the documented v2 snake_case entry', () => {
    // Prepare
    const body = {
      backup_count: 1,
      backup_list: [{
        id: 'ada3e720-ab87-48cb-bff7-3ec5ae1a9652', name: 'ges060803_nodelete-20210608135513', backup_method: 'manual',
        graph_id: '4c5f882d-a813-4d78-a8e3-6d3212ddd121', graph_status: '200', status: 'success',
        start_timestamp: 1623160513000, start_time: '2021-06-08T13:55:13', end_timestamp: 1623160568000,
        end_time: '2021-06-08T13:56:08', size: 1, duration: 54, encrypted: false,
      }],
    };

    // Act
    const result = page(body);

    // Assess
    expect(result.total).toBe(1);
    expect(result.backups).toEqual([{
      id: 'ada3e720-ab87-48cb-bff7-3ec5ae1a9652', name: 'ges060803_nodelete-20210608135513', graphId: '4c5f882d-a813-4d78-a8e3-6d3212ddd121',
      status: 'success', startTimestamp: 1623160513000, endTimestamp: 1623160568000, sizeMb: 1, backupMethod: 'manual',
    }]);
  });

  it('normalizes a v1 camelCase page with a blank errorCode and a size string', () => {
    // Prepare
    const body = {
      errorCode: '', errorMessage: '', backupCount: '2',
      backupList: [
        { id: 'b1', name: 'n1', graphId: 'g1', status: 'backing_up', startTimestamp: '1623160513000', size: '12', backupMethod: 'auto' },
        { id: 'b2', status: 'failed' },
      ],
    };

    // Act
    const result = page(body);

    // Assess
    expect(result.total).toBe(2);
    expect(result.backups[0]).toEqual({
      id: 'b1', name: 'n1', graphId: 'g1', status: 'backing_up', startTimestamp: 1623160513000, endTimestamp: undefined, sizeMb: 12, backupMethod: 'auto',
    });
    expect(result.backups[1]).toMatchObject({ id: 'b2', name: '', graphId: 'g1', status: 'failed', sizeMb: undefined, startTimestamp: undefined });
  });

  it('falls back to the zone-less UTC start_time when the timestamp is missing', () => {
    // Act
    const result = page({ backup_list: [{ id: 'b1', status: 'success', start_time: '2021-06-08T13:55:13' }] });

    // Assess
    expect(result.backups[0]?.startTimestamp).toBe(1623160513000);
  });

  it('accepts a page without backup_count or backup_list (omitempty) as empty', () => {
    // Act
    const result = page({});

    // Assess
    expect(result).toEqual({ backups: [], total: undefined });
  });

  it('names the offending field when an entry has no status', () => {
    // Act
    const err = thrown(() => page({ backup_list: [{ id: 'b1', status: 'success' }, { id: 'b2' }] }));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesBadResponse);
    expect(err.message).toContain('backup_list[1].status');
    expect(err.details?.['fields']).toEqual(['backup_list[1].status']);
  });

  it('names the field when size is not a number', () => {
    // Act
    const err = thrown(() => page({ backup_list: [{ id: 'b1', status: 'success', size: 'big' }] }));

    // Assess
    expect(err.message).toContain('backup_list[0].size: must be a number or a numeric string, got "big"');
  });

  it('rejects an entry without an id', () => {
    // Act
    const err = thrown(() => page({ backup_list: [{ status: 'success' }] }));

    // Assess
    expect(err.message).toContain('backup_list[0].id: id is missing');
  });
});

describe('backup-files answers', () => {
  it('normalizes the documented example, keeping link and expiry text verbatim', () => {
    // Prepare
    const link = 'https://obs.domainname.com/rdsbucket.username.1/xxxxxx?AccessKeyId=A&Expires=1&Signature=s3I%2BrL%3D';
    const body = { bucket: 'string', files: [{ name: '43e4feaab48f11e89039fa163ebaa7e4br01.xxx', size: 2803, download_link: link, link_expired_time: '2018-08-016T10:15:14+0800' }] };

    // Act
    const result = files(body);

    // Assess
    expect(result).toEqual({
      bucket: 'string',
      files: [{ name: '43e4feaab48f11e89039fa163ebaa7e4br01.xxx', sizeKb: 2803, downloadLink: link, linkExpiredTime: '2018-08-016T10:15:14+0800' }],
    });
  });

  it('accepts camelCase fields, size as a string, and a missing expiry', () => {
    // Act
    const result = files({ files: [{ name: 'a.bin', size: '2048', downloadLink: 'https://h/a' }] });

    // Assess
    expect(result).toEqual({ bucket: undefined, files: [{ name: 'a.bin', sizeKb: 2048, downloadLink: 'https://h/a', linkExpiredTime: undefined }] });
  });

  it('treats an absent files list as no files', () => {
    // Act
    const result = files({ bucket: 'b' });

    // Assess
    expect(result.files).toEqual([]);
  });

  it('names a file entry without a link', () => {
    // Act
    const err = thrown(() => files({ files: [{ name: 'a.bin', size: 1 }] }));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesBadResponse);
    expect(err.message).toContain('files[0].download_link: download_link is missing');
  });
});

describe('parseJsonBody', () => {
  it('turns a non-JSON 200 body into GES_BAD_RESPONSE', () => {
    // Act
    const err = thrown(() => parseJsonBody('<html>oops</html>', OP));

    // Assess
    expect(err.code).toBe(ErrorCodes.GesBadResponse);
    expect(err.message).toBe(`GES answered ${OP} with a body that is not JSON`);
  });

  it('reads an empty body as an empty object', () => {
    // Act / Assess
    expect(parseJsonBody('', OP)).toEqual({});
  });
});

describe('parseIamTime', () => {
  it('reads IAM times with microseconds', () => {
    // Act / Assess
    expect(parseIamTime('2020-01-04T09:05:22.701000Z')).toBe(Date.parse('2020-01-04T09:05:22.701Z'));
  });

  it('reads an offset without a colon', () => {
    // Act / Assess
    expect(parseIamTime('2020-01-04T17:05:22+0800')).toBe(Date.parse('2020-01-04T09:05:22Z'));
  });

  it('returns undefined for garbage', () => {
    // Act / Assess
    expect(parseIamTime('tomorrow')).toBeUndefined();
    expect(parseIamTime(undefined)).toBeUndefined();
  });
});
