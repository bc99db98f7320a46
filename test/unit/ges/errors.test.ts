import { ArchiverError, ErrorCodes } from '../../../lib/errors.js';
import {
  gesErrorFromNetwork,
  gesErrorFromResponse,
  normalizeRemoteCode,
  parseErrorBody,
} from '../../../lib/ges/errors.js';
import { parseRetryAfter } from '../../../lib/should-retry.js';

const OP = 'backup-files for graph g1 backup b1';
const json = (v: unknown): string => JSON.stringify(v);

describe('parseErrorBody', () => {
  it.each([
    ['v2 error_code/error_msg', { error_code: 'GES.7000', error_msg: 'The graph does not exist or has been deleted.' }, 'GES.7000', 'The graph does not exist or has been deleted.'],
    ['v1 errorCode/errorMessage', { errorCode: 'GES.7049', errorMessage: 'The parameter [backup_id] is not exist.' }, 'GES.7049', 'The parameter [backup_id] is not exist.'],
    ['code/message', { code: 'APIGW.0101', message: 'The API does not exist.' }, 'APIGW.0101', 'The API does not exist.'],
    ['nested Keystone error{}', { error: { code: 401, message: 'The request you have made requires authentication.', title: 'Unauthorized' } }, '401', 'The request you have made requires authentication.'],
  ])('reads the %s shape', (_shape, body, code, message) => {
    // Act
    const remote = parseErrorBody(json(body));

    // Assess
    expect(remote.code).toBe(code);
    expect(remote.message).toBe(message);
  });

  it('reads the gateway request_id from the body', () => {
    // Act
    const remote = parseErrorBody(json({ error_msg: 'x', error_code: 'APIGW.0301', request_id: 'req-42' }));

    // Assess
    expect(remote).toEqual({ code: 'APIGW.0301', message: 'x', requestId: 'req-42' });
  });

  it('skips empty error fields and takes the next shape that has a code', () => {
    // Prepare: a v1 success-style body with blank errorCode next to a real code/message pair
    const body = json({ errorCode: '', errorMessage: '', code: 'GES.7024', message: 'gone' });

    // Act
    const remote = parseErrorBody(body);

    // Assess
    expect(remote.code).toBe('GES.7024');
    expect(remote.message).toBe('gone');
  });

  it('keeps a short, tag-free fragment of a non-JSON body as the message', () => {
    // Act
    const remote = parseErrorBody('<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');

    // Assess
    expect(remote.code).toBeUndefined();
    expect(remote.message).toBe('502 Bad Gateway nginx');
  });

  it('returns nothing for an empty body', () => {
    // Act
    const remote = parseErrorBody('');

    // Assess
    expect(remote).toEqual({ code: undefined, message: undefined, requestId: undefined });
  });
});

describe('normalizeRemoteCode', () => {
  it('treats the older APIG. prefix as APIGW.', () => {
    // Act / Assess
    expect(normalizeRemoteCode('APIG.0308')).toBe('APIGW.0308');
    expect(normalizeRemoteCode('apigw.0301')).toBe('APIGW.0301');
    expect(normalizeRemoteCode('GES.7024')).toBe('GES.7024');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    // Act / Assess
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
  });

  it('reads an HTTP-date relative to now', () => {
    // Act / Assess
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:07 GMT', now)).toBe(7000);
  });

  it('never returns a negative delay for a date in the past', () => {
    // Act / Assess
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores values that are neither form', () => {
    // Act / Assess
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('soon-ish', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('gesErrorFromResponse', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it.each([
    ['429 without a code', 429, {}, ErrorCodes.GesThrottled, true],
    ['APIGW.0308 on 429', 429, { error_code: 'APIGW.0308', error_msg: 'The throttling threshold has been reached' }, ErrorCodes.GesThrottled, true],
    ['APIG.0308 with an odd status', 400, { error_code: 'APIG.0308', error_msg: 'throttled' }, ErrorCodes.GesThrottled, true],
    ['500 without a body shape', 500, {}, ErrorCodes.GesUnavailable, true],
    ['503', 503, { code: 'APIGW.0613', message: 'The IAM service is currently unavailable.' }, ErrorCodes.GesUnavailable, true],
    ['GES.7005 on 408', 408, { error_code: 'GES.7005', error_msg: 'The underlying service of the graph engine is unavailable.' }, ErrorCodes.GesUnavailable, true],
    ['GES.7006 on 400', 400, { error_code: 'GES.7006', error_msg: 'internal error' }, ErrorCodes.GesUnavailable, true],
    ['GES.7006 on 500', 500, { errorCode: 'GES.7006', errorMessage: 'The underlying graph engine has internal error.' }, ErrorCodes.GesUnavailable, true],
    ['APIGW.0601 gateway internal', 500, { error_code: 'APIGW.0601', error_msg: 'internal' }, ErrorCodes.GesUnavailable, true],
    ['APIGW.0602 bad request', 400, { error_code: 'APIGW.0602', error_msg: 'bad request' }, ErrorCodes.GesRequestRejected, false],
    ['401 APIGW.0301', 401, { error_code: 'APIGW.0301', error_msg: 'Incorrect IAM authentication information: decrypt token fail' }, ErrorCodes.GesAuthFailed, false],
    ['401 APIGW.0307', 401, { error_code: 'APIGW.0307', error_msg: 'The token must be updated.' }, ErrorCodes.GesAuthFailed, false],
    ['GES.7000', 400, { error_code: 'GES.7000', error_msg: 'The graph does not exist or has been deleted.' }, ErrorCodes.GraphNotFound, false],
    ['GES.0016', 400, { error_code: 'GES.0016', error_msg: 'Resource not found' }, ErrorCodes.GraphNotFound, false],
    ['GES.7024', 400, { error_code: 'GES.7024', error_msg: 'The graph backup does not exist or has been deleted.' }, ErrorCodes.BackupNotFound, false],
    ['GES.7049', 400, { errorCode: 'GES.7049', errorMessage: 'The parameter [backup_id] is not exist.' }, ErrorCodes.GesRequestRejected, false],
    ['403 APIGW.0302', 403, { error_code: 'APIGW.0302', error_msg: 'The IAM user is not authorized to access the API.' }, ErrorCodes.GesRequestRejected, false],
    ['404 without a body', 404, {}, ErrorCodes.GesRequestRejected, false],
    ['a 3xx', 302, {}, ErrorCodes.GesBadResponse, false],
  ])('maps %s', (_name, status, body, code, retryable) => {
    // Act
    const err = gesErrorFromResponse(status, {}, json(body), OP, now);

    // Assess
    expect(err).toBeInstanceOf(ArchiverError);
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
    expect(err.details?.['status']).toBe(status);
  });

  it('writes a message a person can act on, with the remote code, status and request id in details', () => {
    // Prepare
    const body = json({ error_code: 'GES.7024', error_msg: 'The graph backup does not exist or has been deleted.' });

    // Act
    const err = gesErrorFromResponse(400, { 'x-request-id': 'rid-1' }, body, OP, now);

    // Assess
    expect(err.message).toBe('GES refused backup-files for graph g1 backup b1: GES.7024 The graph backup does not exist or has been deleted.');
    expect(err.details).toMatchObject({ status: 400, remoteCode: 'GES.7024', requestId: 'rid-1', op: OP });
  });

  it('takes Retry-After in seconds on a 429', () => {
    // Act
    const err = gesErrorFromResponse(429, { 'retry-after': '2' }, json({ error_code: 'APIGW.0308', error_msg: 'slow down' }), OP, now);

    // Assess
    expect(err.retryAfterMs).toBe(2000);
  });

  it('takes Retry-After as an HTTP-date on a 503', () => {
    // Act
    const err = gesErrorFromResponse(503, { 'Retry-After': 'Wed, 01 Jan 2025 00:00:04 GMT' }, 'Service Unavailable', OP, now);

    // Assess
    expect(err.code).toBe(ErrorCodes.GesUnavailable);
    expect(err.retryAfterMs).toBe(4000);
  });

  it('ignores Retry-After on an error that does not retry', () => {
    // Act
    const err = gesErrorFromResponse(400, { 'retry-after': '9' }, json({ error_code: 'GES.7024', error_msg: 'gone' }), OP, now);

    // Assess
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('flags token rejections so the client knows a renewal may help', () => {
    // Act
    const expired = gesErrorFromResponse(401, {}, json({ error_code: 'APIG.0307', error_msg: 'The token must be updated.' }), OP, now);
    const appAuth = gesErrorFromResponse(401, {}, json({ error_code: 'APIGW.0303', error_msg: 'Incorrect app authentication information' }), OP, now);

    // Assess
    expect(expired.details?.['tokenRejected']).toBe(true);
    expect(appAuth.details?.['tokenRejected']).toBe(false);
  });

  it('treats a v1 success body with a real errorCode on a 200 as a rejection', () => {
    // Act
    const err = gesErrorFromResponse(200, {}, json({ errorCode: 'GES.7001', errorMessage: 'The graph is not running.' }), OP, now);

    // Assess
    expect(err.code).toBe(ErrorCodes.GesRequestRejected);
  });

  it('redacts secrets echoed in a remote message', () => {
    // Act
    const err = gesErrorFromResponse(400, {}, json({ error_code: 'GES.0001', error_msg: 'bad X-Auth-Token: s3cr3t-token-value' }), OP, now);

    // Assess
    expect(err.message).not.toContain('s3cr3t-token-value');
  });
});

describe('gesErrorFromNetwork', () => {
  const ctx = { callerAborted: false, timedOut: false, timeoutMs: 1000, service: 'GES' };

  it.each(['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])(
    'maps %s to a retryable GES_UNAVAILABLE',
    (code) => {
      // Prepare
      const cause = Object.assign(new Error('boom'), { code });

      // Act
      const err = gesErrorFromNetwork(cause, OP, ctx);

      // Assess
      expect(err.code).toBe(ErrorCodes.GesUnavailable);
      expect(err.retryable).toBe(true);
      expect(err.details?.['networkCode']).toBe(code);
    },
  );

  it('finds the code inside an AggregateError (happy eyeballs)', () => {
    // Prepare
    const cause = new AggregateError([Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })], 'connect failed');

    // Act
    const err = gesErrorFromNetwork(cause, OP, ctx);

    // Assess
    expect(err.retryable).toBe(true);
  });

  it('maps our own timeout to a retryable error without an abort in its cause chain', () => {
    // Prepare
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');

    // Act
    const err = gesErrorFromNetwork(timeout, OP, { ...ctx, timedOut: true });

    // Assess
    expect(err.code).toBe(ErrorCodes.GesUnavailable);
    expect(err.retryable).toBe(true);
    expect(err.cause).toBeUndefined();
    expect(err.message).toContain('within 1000 ms');
  });

  it('maps the caller giving up to ABORTED, never retried', () => {
    // Act
    const err = gesErrorFromNetwork(new DOMException('aborted', 'AbortError'), OP, { ...ctx, callerAborted: true, timedOut: true });

    // Assess
    expect(err.code).toBe(ErrorCodes.Aborted);
    expect(err.retryable).toBe(false);
  });

  it('does not retry an unknown failure', () => {
    // Act
    const err = gesErrorFromNetwork(new TypeError('invalid header value'), OP, ctx);

    // Assess
    expect(err.code).toBe(ErrorCodes.Internal);
    expect(err.retryable).toBe(false);
  });
});
