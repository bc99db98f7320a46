/**
 * The archiver's CloudWatch metrics: one list shared by the code that emits them, the
 * dashboard and alarms in serverless.yml (which repeat these names; the package test checks
 * they match) and docs/lambda.md ("Metrics and dashboard").
 *
 * Every datapoint carries the dimensions `service` = `ges-archiver` (Powertools always adds
 * it) and `Stage` = the deployment stage; `NewestBackupAgeHours` adds `Graph`.
 */
export const METRIC_NAMESPACE = 'GesArchiver';
export const METRIC_SERVICE_NAME = 'ges-archiver';

export const MetricDimensions = {
  /** Added by Powertools to every datapoint; its value is METRIC_SERVICE_NAME. */
  Service: 'service',
  Stage: 'Stage',
  Graph: 'Graph',
} as const;

export const MetricNames = {
  // Per copy, from the copier (scheduledRun, archiveBackup, copyWorker).
  /** Files copied, verified and stored in this invocation (files reused from an earlier run are not counted again). */
  FilesArchived: 'FilesArchived',
  /** Bytes of those files. */
  BytesArchived: 'BytesArchived',
  /** Copies that ended in an error (not counting cancellation). */
  FilesFailed: 'FilesFailed',
  /** Fresh download links fetched from GES because one expired or was refused. */
  LinkRefreshes: 'LinkRefreshes',
  /** Downloads continued with a Range request after an interruption. */
  Resumes: 'Resumes',
  /** Copies started again from byte 0 (the source changed, or a Range was refused). */
  CopyRestarts: 'CopyRestarts',
  /** Copies handed over to a later invocation (near the Lambda deadline). */
  CopyHandovers: 'CopyHandovers',
  /** Bytes downloaded ÷ duration of one copy call, for calls that moved at least 1 MiB. */
  CopyThroughput: 'CopyThroughput',
  // Per run, from the run report (scheduledRun, archiveBackup).
  BackupsArchived: 'BackupsArchived',
  BackupsSkipped: 'BackupsSkipped',
  BackupsQueued: 'BackupsQueued',
  BackupsFailed: 'BackupsFailed',
  /** Wall-clock duration of a run (plan, copies, report). */
  RunDuration: 'RunDuration',
  /** 1 after a scheduled run in which no backup failed, 0 otherwise: the freshness alarm's metric. */
  ScheduledRunSucceeded: 'ScheduledRunSucceeded',
  /** Hours since the newest archived backup of a graph was taken (dimension Graph); put by scheduledRun. */
  NewestBackupAgeHours: 'NewestBackupAgeHours',
  // The restore drill.
  /** Archived backups whose manifest the drill read. */
  DrillBackupsVerified: 'DrillBackupsVerified',
  /** Files the drill re-read and hashed (the sample). */
  DrillFilesChecked: 'DrillFilesChecked',
  /** Problems the drill found (missing, altered, truncated... files; unreadable manifests). */
  DrillProblems: 'DrillProblems',
} as const;

export type MetricName = (typeof MetricNames)[keyof typeof MetricNames];

/** CloudWatch units used here (the strings CloudWatch and EMF expect). */
export const MetricUnits = {
  Count: 'Count',
  Bytes: 'Bytes',
  Milliseconds: 'Milliseconds',
  BytesPerSecond: 'Bytes/Second',
  None: 'None',
} as const;

export type MetricUnit = (typeof MetricUnits)[keyof typeof MetricUnits];
