import { isIP } from 'node:net';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { formatHostEntry, isLoopbackHost, normaliseHost, parseHostEntry, type HostEntry } from '../hosts.js';

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

/** The default port of the scheme when the URL names none. */
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

function hostMatches(host: string, entry: HostEntry): boolean {
  if (!entry.wildcard) return entry.host === host;
  // Subdomains only, never the suffix itself, never an IP literal.
  return isIP(host) === 0 && host.length > entry.host.length + 1 && host.endsWith(`.${entry.host}`);
}

/**
 * The entry's port rule: the port it names; without one, https on 443 only, except for a
 * loopback host, where any port goes (local stacks pick their ports at start).
 */
function portMatches(host: string, port: number, scheme: string, entry: HostEntry): boolean {
  if (entry.port !== undefined) return port === entry.port;
  return isLoopbackHost(host) || (scheme === 'https' && port === 443);
}

function refuseLink(message: string, details: Record<string, unknown>): never {
  throw new ArchiverError(ErrorCodes.LinkRefused, message, { details });
}

/**
 * Throws LINK_REFUSED unless `url` may be downloaded: https to a host in `allowedHosts`
 * (`*.suffix` matches subdomains only; an entry with a port allows that port only, one
 * without allows 443 only, or any port of a loopback host), or http to a loopback host named
 * exactly in the list. Userinfo is refused. The message names the host and port, never the
 * query string. Returns the parsed URL for reading only: requests must use the original string.
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
  const port = portOf(parsed);
  const entries = allowedHosts.map(parseHostEntry).filter((e): e is HostEntry => e !== undefined);
  // http only to loopback hosts named exactly, never through a wildcard.
  const named = entries.filter((e) => hostMatches(host, e) && (scheme === 'https' || (!e.wildcard && isLoopbackHost(host))));
  if (named.length === 0) {
    refuseLink(scheme === 'http'
      ? `Download link to host "${host}" is plain http; only https is allowed (http only to loopback hosts named in DOWNLOAD_ALLOWED_HOSTS)`
      : `Download link host "${host}" is not in DOWNLOAD_ALLOWED_HOSTS`, { host, scheme });
  }
  if (!named.some((e) => portMatches(host, port, scheme, e))) {
    refuseLink(`Download link to host "${host}" uses port ${port}, which DOWNLOAD_ALLOWED_HOSTS does not allow `
      + `(an entry without a port allows https on 443 only): add "${formatHostEntry({ host, wildcard: false, port })}" if this port is genuine`, { host, scheme, port });
  }
  return parsed;
}
