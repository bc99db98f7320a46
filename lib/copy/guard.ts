import { isIP } from 'node:net';
import { ArchiverError, ErrorCodes } from '../errors.js';

/**
 * The two checks that stand between GES's answer and our requests / S3 keys. GES is trusted to
 * authenticate, not to be well-formed: a link may point anywhere and a name may hold anything, so
 * both are checked before they are used (every link, including every refreshed one).
 */

const MAX_NAME_BYTES = 255;
// C0/C1 controls, DEL, line/paragraph separators, bidi overrides/isolates, BOM: invisible or
// spoofing characters that no archive file name needs.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/u;
// Half of a UTF-16 surrogate pair: not encodable as UTF-8, so not a valid S3 key.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Percent-encoded '.', '/' and '\': harmless to S3, but a consumer that decodes keys would see a
// different path, so they are refused too.
const ENCODED_SEPARATOR = /%(2e|2f|5c)/i;

function refuseName(reason: string): never {
  throw new ArchiverError(ErrorCodes.UnsafeFileName, `Unsafe file name from GES: ${reason}`, { details: { reason } });
}

/** Throws UNSAFE_FILE_NAME unless `name` is a safe single path segment (usable as the last part of an S3 key). */
export function assertSafeFileName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) refuseName('the name is empty');
  if (name === '.' || name === '..') refuseName(`"${name}" is a relative path reference`);
  if (name.includes('/') || name.includes('\\')) refuseName('the name contains a path separator');
  if (LONE_SURROGATE.test(name)) refuseName('the name is not well-formed Unicode');
  if (FORBIDDEN_CHARS.test(name)) refuseName('the name contains control or invisible formatting characters');
  if (/^\s|\s$/u.test(name)) refuseName('the name starts or ends with whitespace');
  if (ENCODED_SEPARATOR.test(name)) refuseName('the name contains a percent-encoded dot or path separator');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) refuseName(`the name is ${bytes} bytes long (at most ${MAX_NAME_BYTES} allowed)`);
}

/** Host as matched: lower case, no IPv6 brackets, no trailing dot. */
function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** An allow-list entry without scheme or port ("host", "host:port", "[::1]:9000", "*.suffix"). */
function normaliseEntry(entry: string): string {
  let e = entry.trim().toLowerCase();
  if (e.startsWith('[')) {
    const end = e.indexOf(']');
    return end > 0 ? e.slice(1, end) : e;
  }
  // One colon: host:port. More than one: a bare IPv6 literal, which has no port.
  const colons = e.split(':').length - 1;
  if (colons === 1) e = e.slice(0, e.indexOf(':'));
  return normaliseHost(e);
}

export function isLoopbackHost(host: string): boolean {
  const h = normaliseHost(host);
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

function hostMatches(host: string, entries: readonly string[], exactOnly: boolean): boolean {
  for (const entry of entries) {
    if (entry.startsWith('*.')) {
      // Subdomains only, never the suffix itself, never an IP literal.
      if (exactOnly || isIP(host) !== 0) continue;
      const suffix = entry.slice(1); // ".suffix"
      if (suffix.length > 1 && host.endsWith(suffix) && host.length > suffix.length) return true;
    } else if (entry === host) {
      return true;
    }
  }
  return false;
}

function refuseLink(message: string, details: Record<string, unknown>): never {
  throw new ArchiverError(ErrorCodes.LinkRefused, message, { details });
}

/**
 * Throws LINK_REFUSED unless `url` may be downloaded: https to a host in `allowedHosts`
 * (`*.suffix` matches subdomains only; ports are ignored), or http to a loopback host named
 * exactly in the list. Userinfo is refused. The message names the host, never the query string.
 * Returns the parsed URL for reading only: requests must use the original string.
 */
export function assertAllowedLink(url: string, allowedHosts: readonly string[]): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new ArchiverError(ErrorCodes.LinkRefused, 'Download link is not a valid absolute URL', { cause: err instanceof Error ? new Error(err.name) : undefined });
  }
  const host = normaliseHost(parsed.hostname);
  const scheme = parsed.protocol.replace(/:$/, '');
  if (scheme !== 'https' && scheme !== 'http') {
    refuseLink(`Download link to host "${host}" uses the scheme "${scheme}"; only https is allowed`, { host, scheme });
  }
  // The raw authority, as the URL parser may drop an empty userinfo ("https://@host").
  const afterScheme = url.slice(url.indexOf(':') + 1).replace(/^[/\\]*/, '');
  const authority = afterScheme.split(/[/?#\\]/, 1)[0] ?? '';
  if (parsed.username !== '' || parsed.password !== '' || authority.includes('@')) {
    refuseLink(`Download link to host "${host}" carries user credentials in the URL; refused`, { host, scheme });
  }
  if (host === '') refuseLink('Download link has no host', { scheme });
  const entries = allowedHosts.map(normaliseEntry).filter((e) => e !== '' && e !== '*.');
  if (scheme === 'http') {
    if (!isLoopbackHost(host) || !hostMatches(host, entries, true)) {
      refuseLink(`Download link to host "${host}" is plain http; only https is allowed (http only to loopback hosts named in DOWNLOAD_ALLOWED_HOSTS)`, { host, scheme });
    }
    return parsed;
  }
  if (!hostMatches(host, entries, false)) {
    refuseLink(`Download link host "${host}" is not in DOWNLOAD_ALLOWED_HOSTS`, { host, scheme });
  }
  return parsed;
}
