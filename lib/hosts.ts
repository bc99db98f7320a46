import { isIP } from 'node:net';

/**
 * Host names, loopback hosts and DOWNLOAD_ALLOWED_HOSTS entries: shared by the configuration
 * (which validates the entries and the GES/IAM endpoints) and the download-link guard (which
 * matches links against the entries).
 */

/** Host as matched: lower case, no IPv6 brackets, no trailing dot. */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** localhost, 127.0.0.0/8 and ::1: the only hosts plain http may go to. */
export function isLoopbackHost(host: string): boolean {
  const h = normaliseHost(host);
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** One DOWNLOAD_ALLOWED_HOSTS entry: `host`, `host:port`, `*.suffix`, `*.suffix:port`, `[v6]`, `[v6]:port`. */
export interface HostEntry {
  /** Normalised host, or the suffix without `*.` for a wildcard. */
  host: string;
  /** `*.suffix`: subdomains of `host` only, never `host` itself. */
  wildcard: boolean;
  /** The one port allowed; undefined: 443 (https), or any port of a loopback host. */
  port: number | undefined;
}

const LABEL = '[a-z0-9]([a-z0-9-]*[a-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65_535 ? port : undefined;
}

/** Parses an entry (case-insensitive, trimmed); undefined when it is not a valid one. */
export function parseHostEntry(entry: string): HostEntry | undefined {
  const e = entry.trim().toLowerCase();
  let host = e;
  let portText: string | undefined;
  if (e.startsWith('[')) {
    const end = e.indexOf(']');
    if (end < 0) return undefined;
    host = e.slice(1, end);
    const rest = e.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) return undefined;
  } else if (isIP(e) === 6) {
    // A bare IPv6 literal: its colons are not a port separator.
    host = e;
  } else {
    const colon = e.lastIndexOf(':');
    if (colon >= 0) {
      host = e.slice(0, colon);
      portText = e.slice(colon + 1);
    }
  }
  const port = portText === undefined ? undefined : parsePort(portText);
  if (portText !== undefined && port === undefined) return undefined;
  const wildcard = host.startsWith('*.');
  if (wildcard) host = host.slice(2);
  host = normaliseHost(host);
  if (host === '' || (isIP(host) === 0 && !HOST_NAME.test(host)) || (wildcard && isIP(host) !== 0)) return undefined;
  return { host, wildcard, port };
}

/** The entry's canonical text (`host`, `*.suffix:8443`, `[::1]:9000`), as stored in the configuration. */
export function formatHostEntry(entry: HostEntry): string {
  const host = isIP(entry.host) === 6 ? `[${entry.host}]` : entry.host;
  return `${entry.wildcard ? '*.' : ''}${host}${entry.port === undefined ? '' : `:${entry.port}`}`;
}
