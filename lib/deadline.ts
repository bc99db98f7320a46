/**
 * The margins kept before a Lambda invocation's deadline, named together because they depend on
 * each other. The deadline itself is computed once per invocation, by the shared middy stack
 * (functions/lib/middleware.ts, `InvocationTools.deadline`), and handed down as epoch ms.
 *
 * deadline − inlineKeepFreeMs   a scheduled run (or a graph's planning message) copies inline only
 *                               if its estimate fits before this (lib/fanout/plan-fanout.ts)
 * deadline − handoverMs         a copy worker hands a long copy over: checkpoint + continuation
 *                               message (lib/fanout/worker.ts)
 * deadline − drillHandoverMs    a drill worker starts no new file and queues a continuation for
 *                               the rest of the backup (lib/drill/check-backup.ts): hashing stops
 *                               between files, so only the files under way need to finish
 * deadline − abortMs            the invocation's AbortSignal fires: everything stops and cleans up
 * deadline − hardStopMs         middy gives up on a handler that has not returned (the backstop)
 *
 * After the abort, saving a copy's checkpoint and queueing its continuation get handoverSaveMs of
 * their own, which must end before the backstop: handoverSaveMs < abortMs − hardStopMs
 * (test/unit/deadline.test.ts).
 */
export const DEADLINE_MARGINS = Object.freeze({
  inlineKeepFreeMs: 60_000,
  handoverMs: 60_000,
  abortMs: 10_000,
  hardStopMs: 1_000,
  handoverSaveMs: 8_000,
  drillHandoverMs: 30_000,
});
