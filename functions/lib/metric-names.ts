/**
 * Custom CloudWatch metrics the archiver emits, shared by the code that puts them and the
 * alarms in serverless.yml (which repeats these names: keep the two in step; the package test
 * checks they match).
 *
 * `ScheduledRunSucceeded` (value 1, unit Count, dimension `Stage` = ARCHIVER_STAGE) is put by
 * scheduledRun after a run in which no backup failed. The freshness alarm fires when no such
 * datapoint arrives for `freshnessHours` hours (missing data counts as breaching), so a run that
 * never starts, crashes or keeps failing is noticed. The metric is emitted by the metrics work
 * (a later issue); until then that alarm stays in ALARM after a deploy.
 */
export const METRIC_NAMESPACE = 'GesArchiver';
export const METRIC_SCHEDULED_RUN_SUCCEEDED = 'ScheduledRunSucceeded';
export const METRIC_DIMENSION_STAGE = 'Stage';
/** Environment variable carrying the stage name for the `Stage` dimension. */
export const STAGE_ENV_VAR = 'ARCHIVER_STAGE';
