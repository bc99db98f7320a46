// Backup import (POST …/backups/import, docs/ges-api.md §4.7) and job status (GET …/jobs/{id}/status,
// §4.4). A job answers `pending`, then `running`, until it has been asked `pollsUntilDone` times;
// that answer and every later one is final: `success`, or `failed` with a `fail_reason` (from
// faults.failImport or the verifyImport hook). A successful import adds a backup whose
// backup_method is "import" to the graph, as GES lists imported backups.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultState } from './faults.js';
import { readBody, sendJson } from './http-util.js';
import type { Model } from './model.js';
import type { EmulatorOptions, EmulatorStats } from './types.js';

interface Job {
  id: string;
  graphId: string;
  importPath: string;
  polls: number;
  pollsUntilDone: number;
  beginTime: number;
  endTime: number | undefined;
  /** Decided when the job starts; awaited at its final poll. */
  failReason: Promise<string | undefined>;
  outcome: { status: 'success' | 'failed'; failReason?: string } | undefined;
}

export interface JobContext {
  model: Model;
  faults: FaultState;
  stats: EmulatorStats;
  options: EmulatorOptions;
}

const gesError = (res: ServerResponse, code: string, msg: string): void => sendJson(res, 400, { error_code: code, error_msg: msg });

/** yyyy-MM-ddTHH:mm:ss UTC, as the 2023 job-status doc writes begin_time. */
function jobTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

export class JobStore {
  private readonly jobs = new Map<string, Job>();

  constructor(private readonly ctx: JobContext) {}

  /** POST /v2/{project}/graphs/{graph}/backups/import */
  /** `bodyText`: the body, when the gateway already read it (to check a signature). */
  async startImport(req: IncomingMessage, res: ServerResponse, graphId: string, bodyText?: string): Promise<void> {
    this.ctx.stats.importRequests++;
    if (!this.ctx.model.graphs.has(graphId)) return gesError(res, 'GES.7000', 'The graph does not exist or has been deleted.');
    let body: unknown;
    try {
      body = JSON.parse(bodyText ?? await readBody(req)) as unknown;
    } catch {
      return gesError(res, 'GES.7016', 'The request body or header is invalid.');
    }
    const importPath = typeof body === 'object' && body !== null ? (body as { import_path?: unknown }).import_path : undefined;
    if (typeof importPath !== 'string' || importPath.trim() === '') return gesError(res, 'GES.7050', 'The parameter is empty.');
    // An OBS path is "bucket/dir" (inference: the documented examples never show a scheme or a trailing slash).
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(importPath) || importPath.endsWith('/') || importPath.startsWith('/')) {
      return gesError(res, 'GES.7011', 'The path or name of the schema or data file is invalid.');
    }
    const injected = this.ctx.faults.takeImportFailure();
    const hook = this.ctx.options.verifyImport;
    const job: Job = {
      id: randomBytes(16).toString('hex'),
      graphId,
      importPath,
      polls: 0,
      pollsUntilDone: Math.max(1, this.ctx.options.importPollsUntilDone ?? 2),
      beginTime: Date.now(),
      endTime: undefined,
      failReason: injected !== undefined ? Promise.resolve(injected) : hook ? hook(importPath, graphId) : Promise.resolve(undefined),
      outcome: undefined,
    };
    // A rejected hook is the emulator's bug: surface it at the final poll, not as an unhandled rejection now.
    job.failReason.catch(() => undefined);
    this.jobs.set(job.id, job);
    this.ctx.stats.imports.push({ graphId, importPath, jobId: job.id });
    sendJson(res, 200, { job_id: job.id });
  }

  /** GET /v2/{project}/graphs/{graph}/jobs/{job}/status */
  async status(res: ServerResponse, graphId: string, jobId: string): Promise<void> {
    this.ctx.stats.jobStatusRequests++;
    const graph = this.ctx.model.graphs.get(graphId);
    if (!graph) return gesError(res, 'GES.7000', 'The graph does not exist or has been deleted.');
    const job = this.jobs.get(jobId);
    if (!job || job.graphId !== graphId) return gesError(res, 'GES.7007', 'The job does not exist.');
    job.polls += 1;
    if (job.outcome === undefined && job.polls >= job.pollsUntilDone) {
      const failReason = await job.failReason;
      job.endTime = Date.now();
      job.outcome = failReason === undefined ? { status: 'success' } : { status: 'failed', failReason };
      if (job.outcome.status === 'success') {
        this.ctx.model.addBackup(graphId, { id: randomUUID(), name: `${graph.name}-import-${job.id.slice(0, 8)}`, backupMethod: 'import', files: [] });
      }
    }
    const status = job.outcome?.status ?? (job.polls === 1 ? 'pending' : 'running');
    sendJson(res, 200, {
      job_id: job.id,
      status,
      job_type: 'ImportBackup',
      job_name: 'ImportBackup',
      related_graph: graph.name,
      begin_time: jobTime(job.beginTime),
      end_time: job.endTime === undefined ? '' : jobTime(job.endTime),
      job_progress: job.outcome ? 100 : Math.min(99, Math.round((100 * job.polls) / job.pollsUntilDone)),
      ...(job.outcome?.failReason === undefined ? {} : { fail_reason: job.outcome.failReason }),
    });
  }
}
