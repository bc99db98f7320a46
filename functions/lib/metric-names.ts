/**
 * Custom CloudWatch metrics the archiver emits, shared by the code that puts them and the
 * alarms in serverless.yml (which repeats these names: keep the two in step; the package test
 * checks they match).
 *
 * `ScheduledRunSucceeded` (value 1, unit Count, dimension `Stage` = ARCHIVER_STAGE) is put by
 * scheduledRun after a run in which no backup failed. The freshness alarm fires when no such
 * datapoint arrives for `freshnessHours` hours (missing data counts as breaching), so a run that
 * never starts, crashes or keeps failing is noticed. A run with a failed backup puts 0.
 *
 * Every datapoint also carries `service` = `ges-archiver`: Powertools adds that dimension to
 * every EMF document, and CloudWatch matches an alarm's dimensions exactly, so the alarms name
 * both. The full list of metrics is lib/metrics/names.ts.
 */
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME, MetricDimensions, MetricNames } from '../../lib/metrics/names.js';

export { METRIC_NAMESPACE, METRIC_SERVICE_NAME };
export const METRIC_SCHEDULED_RUN_SUCCEEDED = MetricNames.ScheduledRunSucceeded;
export const METRIC_DIMENSION_STAGE = MetricDimensions.Stage;
export const METRIC_DIMENSION_SERVICE = MetricDimensions.Service;
/** Environment variable carrying the stage name for the `Stage` dimension. */
export const STAGE_ENV_VAR = 'ARCHIVER_STAGE';
