// The emulator's state: graphs, backups, files, IAM tokens and issued links.
import { randomBytes } from 'node:crypto';
import { FileContent, GeneratedContent, type ContentSource } from './content.js';
import type { BackupStatus, EmulatorBackupSpec, EmulatorFileSpec, EmulatorGraphSpec } from './types.js';

export interface FileEntry {
  graphId: string;
  backupId: string;
  name: string;
  content: ContentSource;
  /** The spec's seed, restored by faults.reset() after changeFile(). */
  originalSeed: string | undefined;
  generated: boolean;
  /** Set by changeFile(); cleared when faults.reset() restores the original content. */
  changed: boolean;
  /** Latest expiry (epoch s) of the links issued for this file. */
  lastIssuedExpires: number;
  /**
   * Links expiring at or before this (epoch s) were revoked by expireLinksAfterBytes. Links issued
   * later are given a later expiry, so one number identifies every revoked link: no per-link memory.
   */
  revokedThrough: number;
}

export interface BackupEntry {
  id: string;
  name: string;
  status: BackupStatus;
  backupMethod: string;
  graphId: string;
  startTimestamp: number;
  endTimestamp: number;
  files: FileEntry[];
}

export interface GraphEntry {
  id: string;
  name: string;
  backups: BackupEntry[];
}

// 2024-01-01T00:00:00Z; default backup times are spaced an hour apart from here, so runs are reproducible.
const BASE_TIME = Date.UTC(2024, 0, 1);

function compactUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace(/[-:T]/g, '');
}

function makeContent(graphId: string, backupId: string, spec: EmulatorFileSpec, seed: string | undefined, lastModified: Date): ContentSource {
  if ('path' in spec) return new FileContent(spec.path);
  return new GeneratedContent([graphId, backupId, spec.name, seed ?? ''], spec.bytes, lastModified);
}

export class Model {
  readonly graphs = new Map<string, GraphEntry>();
  private backupCounter = 0;

  constructor(graphs: EmulatorGraphSpec[]) {
    for (const g of graphs) {
      if (this.graphs.has(g.id)) throw new Error(`duplicate graph id ${g.id}`);
      this.graphs.set(g.id, { id: g.id, name: g.name ?? `graph-${g.id.slice(0, 8)}`, backups: [] });
      for (const b of g.backups) this.addBackup(g.id, b);
    }
  }

  addBackup(graphId: string, spec: EmulatorBackupSpec): void {
    const graph = this.graphs.get(graphId);
    if (!graph) throw new Error(`unknown graph ${graphId}`);
    if (graph.backups.some((b) => b.id === spec.id)) throw new Error(`duplicate backup id ${spec.id} in graph ${graphId}`);
    const startTimestamp = spec.startTimestamp ?? BASE_TIME + this.backupCounter++ * 3_600_000;
    const endTimestamp = startTimestamp + 54_000;
    const names = new Set<string>();
    const files = spec.files.map((f): FileEntry => {
      if (names.has(f.name)) throw new Error(`duplicate file ${f.name} in backup ${spec.id}`);
      names.add(f.name);
      const seed = 'path' in f ? undefined : f.seed;
      return {
        graphId, backupId: spec.id, name: f.name,
        content: makeContent(graphId, spec.id, f, seed, new Date(endTimestamp)),
        originalSeed: seed, generated: !('path' in f), changed: false,
        lastIssuedExpires: 0, revokedThrough: 0,
      };
    });
    graph.backups.push({
      id: spec.id,
      name: spec.name ?? `${graph.name}-${compactUtc(startTimestamp)}`,
      status: spec.status ?? 'success',
      backupMethod: spec.backupMethod ?? 'manual',
      graphId, startTimestamp, endTimestamp, files,
    });
  }

  backup(graphId: string, backupId: string): BackupEntry | undefined {
    return this.graphs.get(graphId)?.backups.find((b) => b.id === backupId);
  }

  file(graphId: string, backupId: string, name: string): FileEntry {
    const file = this.backup(graphId, backupId)?.files.find((f) => f.name === name);
    if (!file) throw new Error(`no file ${graphId}/${backupId}/${name}`);
    return file;
  }

  changeFile(graphId: string, backupId: string, name: string, seed: string | undefined): void {
    const file = this.file(graphId, backupId, name);
    if (!file.generated) throw new Error(`changeFile: ${name} is served from disk`);
    file.content = new GeneratedContent([graphId, backupId, name, seed ?? ''], file.content.bytes, new Date(Math.floor(Date.now() / 1000) * 1000));
    file.changed = true;
  }

  restoreFiles(): void {
    for (const g of this.graphs.values()) {
      for (const b of g.backups) {
        for (const f of b.files) {
          if (!f.changed) continue;
          f.content = new GeneratedContent([g.id, b.id, f.name, f.originalSeed ?? ''], f.content.bytes, new Date(b.endTimestamp));
          f.changed = false;
        }
      }
    }
  }

  allBackups(): BackupEntry[] {
    return [...this.graphs.values()].flatMap((g) => g.backups);
  }
}

export interface TokenInfo {
  projectId: string;
  projectName: string;
  userName: string;
  issuedAt: number;
  expiresAt: number;
  generation: number;
  static: boolean;
}

export class TokenStore {
  private readonly tokens = new Map<string, TokenInfo>();
  private generation = 0;
  private staticGeneration = 0;

  constructor(staticTokens: readonly string[], projectId: string, projectName: string) {
    for (const t of staticTokens) {
      this.tokens.set(t, { projectId, projectName, userName: 'static', issuedAt: Date.now(), expiresAt: Number.POSITIVE_INFINITY, generation: 0, static: true });
    }
  }

  issue(info: Omit<TokenInfo, 'generation' | 'static'>): string {
    // Real tokens are opaque PKI blobs of several KB; a long base64 string keeps clients honest about header sizes.
    const token = `MIIEemu${randomBytes(480).toString('base64')}`;
    this.tokens.set(token, { ...info, generation: this.generation, static: false });
    return token;
  }

  check(token: string): { ok: true; info: TokenInfo } | { ok: false; reason: 'unknown' | 'revoked' | 'expired'; info?: TokenInfo } {
    const info = this.tokens.get(token);
    if (!info) return { ok: false, reason: 'unknown' };
    const current = info.static ? this.staticGeneration : this.generation;
    if (info.generation < current) return { ok: false, reason: 'revoked', info };
    if (Date.now() >= info.expiresAt) return { ok: false, reason: 'expired', info };
    return { ok: true, info };
  }

  invalidate(includeStatic: boolean): void {
    this.generation++;
    if (includeStatic) this.staticGeneration++;
  }
}
