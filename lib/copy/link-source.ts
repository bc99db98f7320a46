import { ArchiverError, ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import { assertAllowedLink } from './guard.js';
import type { CopyStats, FileLink } from './types.js';

export interface LinkSourceOptions {
  getLink(signal: AbortSignal): Promise<FileLink>;
  allowedHosts: readonly string[];
  /** A link is replaced this long before it expires. */
  marginMs: number;
  now: () => number;
  log: Logger;
  signal: AbortSignal;
  /** Counts every refresh, whether for expiry or for a refusal. */
  stats: Pick<CopyStats, 'linkRefreshes'>;
}

/**
 * The download link of one copy, shared by all its streams: replaced before it expires and
 * after a 403, and told apart from a link that will never work (a fresh one refused twice in a
 * row). Several streams asking at once share one GES request; a 403 on a link that has already
 * been replaced only sends that stream round again with the new one.
 */
export class LinkSource {
  private link: FileLink | undefined;
  private refreshing: Promise<FileLink> | undefined;
  private worked = false;
  private freshRefusals = 0;

  constructor(private readonly o: LinkSourceOptions, initial: FileLink | undefined) {
    this.link = initial;
  }

  /** The link to use for the next request, refreshed first if it is near its expiry. */
  async current(): Promise<FileLink> {
    let link = this.link;
    if (!link || this.o.now() >= link.expiresAt - this.o.marginMs) {
      if (link && !this.refreshing) this.o.stats.linkRefreshes++;
      link = await this.refresh();
    }
    // Every link, the refreshed ones too, is checked before any request is made to it.
    assertAllowedLink(link.url, this.o.allowedHosts);
    return link;
  }

  private refresh(): Promise<FileLink> {
    this.refreshing ??= this.o.getLink(this.o.signal).then((link) => {
      this.link = link;
      this.worked = false;
      if (this.o.now() >= link.expiresAt - this.o.marginMs) {
        this.o.log.warn({ expiresAt: new Date(link.expiresAt).toISOString() }, 'fresh link is already within its safety margin; using it anyway');
      }
      return link;
    }).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The link answered with a body. */
  markWorked(link: FileLink): void {
    if (link !== this.link) return;
    this.worked = true;
    this.freshRefusals = 0;
  }

  /**
   * A 403 on `link`: drops it so the next request gets a fresh one, and returns the error for the
   * caller to treat as an interruption. Throws when fresh links keep being refused.
   */
  refused(link: FileLink, remoteCode: string | undefined): ArchiverError {
    const host = safeHost(link.url);
    const error = new ArchiverError(ErrorCodes.LinkExpired, `Download link to ${host} was refused (403${remoteCode ? ` ${remoteCode}` : ''})`, {
      details: { host, status: 403, remoteCode },
    });
    // Another stream already replaced this link (or is replacing it): just use the new one.
    if (link !== this.link) return error;
    // A 403 on a link that worked, or past its expiry, means "get a fresh link": OBS refuses an expired signature with 403.
    // A fresh link refused twice in a row never will work.
    if (!this.worked && this.o.now() < link.expiresAt) {
      this.freshRefusals++;
      if (this.freshRefusals > 1) {
        throw new ArchiverError(ErrorCodes.LinkExpired, `Fresh download links to ${host} are refused (403${remoteCode ? ` ${remoteCode}` : ''})`, {
          details: error.details,
        });
      }
    }
    this.link = undefined;
    this.o.stats.linkRefreshes++;
    return error;
  }
}

/** Links are never logged (their query strings are credentials); the host is. */
function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}
