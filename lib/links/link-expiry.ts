/**
 * When does a download link stop working? The URL's own signature parameters are the truth;
 * GES's `link_expired_time` is a badly specified string (docs/ges-api.md §9.1) read leniently; when
 * neither helps, GES documents a validity of 3,600 s from issuance.
 */

export const DEFAULT_LINK_VALIDITY_MS = 3_600_000;
// OBS refuses Expires more than 20 years ahead (obs_04_0011); anything beyond is not a time.
const MAX_AHEAD_MS = 20 * 365 * 24 * 3_600_000;

const LINK_TIME = new RegExp(
  '^(\\d{4})-(\\d{1,2})-(\\d{1,3})[Tt ](\\d{1,2}):(\\d{2})(?::(\\d{2})(?:[.,](\\d+))?)?' +
  '\\s*(Z|z|UTC|GMT|[+-]\\d{2}(?::?\\d{2})?)?$',
);

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Parses GES's `link_expired_time` into epoch ms, or undefined; never throws. Accepts
 * `yyyy-mm-ddThh:mm:ss` followed by `Z`, `±hhmm`, `±hh:mm`, `±hh` or nothing (then UTC),
 * optional fractional seconds, a space instead of `T`, and the documented malformed 3-digit day
 * (`2018-08-016` is read as day 16; a 3-digit day that is not a valid day is refused).
 * Bare epoch numbers (10 digits: seconds, 13: milliseconds) are accepted too.
 */
export function parseLinkExpiredTime(raw: string | undefined): number | undefined {
  if (typeof raw !== 'string') return undefined;
  const text = raw.trim();
  if (/^\d{10}$/.test(text)) return Number(text) * 1000;
  if (/^\d{13}$/.test(text)) return Number(text);
  const m = LINK_TIME.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (month < 1 || month > 12) return undefined;
  if (day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  let offsetMinutes = 0;
  if (zone !== undefined && /^[+-]/.test(zone)) {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 14 || om > 59) return undefined;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  // A leap second (:60) is read as the next second, as Date.UTC does.
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMinutes * 60_000;
  return Number.isFinite(utc) ? utc : undefined;
}

function queryParam(params: URLSearchParams, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of params) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** `yyyymmddTHHMMSSZ` (SigV4's X-Amz-Date) → epoch ms. */
function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  return Number.isFinite(t) ? t : undefined;
}

/** Expiry carried by the URL's own signature parameters, or undefined. Never throws. */
export function urlExpiresAt(url: string): number | undefined {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams; // read only: the request uses the original string
  } catch {
    return undefined;
  }
  const expires = queryParam(params, 'Expires');
  if (expires !== undefined && /^\d{1,12}$/.test(expires.trim())) return Number(expires.trim()) * 1000;
  for (const prefix of ['X-Amz-', 'X-Obs-']) {
    const date = queryParam(params, `${prefix}Date`);
    const seconds = queryParam(params, `${prefix}Expires`);
    if (date === undefined || seconds === undefined || !/^\d{1,9}$/.test(seconds.trim())) continue;
    const signedAt = parseAmzDate(date);
    if (signedAt !== undefined) return signedAt + Number(seconds.trim()) * 1000;
  }
  return undefined;
}

function plausible(t: number | undefined, receivedAt: number): t is number {
  return t !== undefined && t > 0 && t < receivedAt + MAX_AHEAD_MS;
}

/**
 * The instant (epoch ms) after which `url` should be considered dead: the URL's `Expires` (OBS
 * and S3 V2) or `X-Amz-Date` + `X-Amz-Expires` (S3 V4) first, then `link_expired_time`, then
 * `receivedAt` + 3,600 s. Callers subtract their own safety margin.
 */
export function linkExpiresAt(url: string, linkExpiredTime: string | undefined, receivedAt: number): number {
  const fromUrl = urlExpiresAt(url);
  if (plausible(fromUrl, receivedAt)) return fromUrl;
  const fromGes = parseLinkExpiredTime(linkExpiredTime);
  // Already past on arrival means the zone was misread (§9.1: zoneless may be UTC+8): ignore it.
  if (plausible(fromGes, receivedAt) && fromGes > receivedAt) return fromGes;
  return receivedAt + DEFAULT_LINK_VALIDITY_MS;
}
