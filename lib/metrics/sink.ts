import type { MetricName, MetricUnit } from './names.js';

/**
 * Where lib/ code records metrics. lib/ never imports the metrics library: the Lambda side
 * (functions/lib/metrics.ts) implements this with Powertools (EMF on stdout), the CLI records
 * none, tests use `MemoryMetrics`.
 */
export interface MetricsSink {
  /** One datapoint with the sink's default dimensions; flushed at the end of the invocation. */
  add(name: MetricName, unit: MetricUnit, value: number): void;
  /** One datapoint with extra dimensions on top of the defaults (emitted as its own EMF document). */
  addWithDimensions(name: MetricName, unit: MetricUnit, value: number, dimensions: Readonly<Record<string, string>>): void;
}

export interface RecordedDatapoint {
  name: MetricName;
  unit: MetricUnit;
  value: number;
  dimensions: Readonly<Record<string, string>>;
}

/** Keeps every datapoint in memory (tests, and callers that want to inspect what was recorded). */
export class MemoryMetrics implements MetricsSink {
  readonly datapoints: RecordedDatapoint[] = [];

  add(name: MetricName, unit: MetricUnit, value: number): void {
    this.datapoints.push({ name, unit, value, dimensions: {} });
  }

  addWithDimensions(name: MetricName, unit: MetricUnit, value: number, dimensions: Readonly<Record<string, string>>): void {
    this.datapoints.push({ name, unit, value, dimensions: { ...dimensions } });
  }

  /** Sum of the values recorded under `name` (any dimensions). */
  sum(name: MetricName): number {
    return this.datapoints.filter((d) => d.name === name).reduce((n, d) => n + d.value, 0);
  }

  valuesOf(name: MetricName): number[] {
    return this.datapoints.filter((d) => d.name === name).map((d) => d.value);
  }
}
