// Starts the local stack once per jest run: Swift (S3) and fauxqs (SQS + SNS), unless
// TEST_S3_ENDPOINT / TEST_SQS_ENDPOINT already point at running ones. Test workers inherit
// the endpoints and credentials through process.env; global-teardown.ts stops what we started.
import { tsImport } from 'tsx/esm/api';

// Jest loads this file as CommonJS (SWC-transformed) outside the test sandbox, where the
// project's `./x.js` specifiers for TypeScript files do not resolve; tsx loads them as ES modules.
type SwiftModule = typeof import('../../scripts/local-stack/swift.js');
type FauxqsModule = typeof import('../../scripts/local-stack/fauxqs.js');

interface Stoppable {
  stop(): Promise<void>;
}

/** Where global-teardown.ts finds what to stop: both run in jest's main process. */
const LOCAL_STACK_KEY = Symbol.for('ges-archiver.local-stack');

export default async function globalSetup(): Promise<void> {
  const [{ startSwift }, { startFauxqs }] = await Promise.all([
    tsImport('../../scripts/local-stack/swift.ts', import.meta.url) as Promise<SwiftModule>,
    tsImport('../../scripts/local-stack/fauxqs.ts', import.meta.url) as Promise<FauxqsModule>,
  ]);
  const begin = Date.now();
  const [swiftResult, fauxqsResult] = await Promise.allSettled([
    process.env.TEST_S3_ENDPOINT ? undefined : startSwift(),
    process.env.TEST_SQS_ENDPOINT ? undefined : startFauxqs(),
  ]);
  const swift = swiftResult.status === 'fulfilled' ? swiftResult.value : undefined;
  const fauxqs = fauxqsResult.status === 'fulfilled' ? fauxqsResult.value : undefined;
  const started: Stoppable[] = [swift, fauxqs].filter((s) => s !== undefined);
  for (const result of [swiftResult, fauxqsResult]) {
    if (result.status === 'rejected') {
      await Promise.allSettled(started.map((s) => s.stop()));
      throw result.reason;
    }
  }

  if (swift !== undefined) {
    process.env.TEST_S3_ENDPOINT = swift.endpoint;
    process.env.AWS_ACCESS_KEY_ID = swift.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = swift.secretAccessKey;
    process.env.AWS_REGION = swift.region;
    delete process.env.AWS_SESSION_TOKEN;
  } else {
    // Reusing a stack: keep the caller's credentials, fall back to Swift's tempauth user.
    process.env.AWS_ACCESS_KEY_ID ??= 'test:tester';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
    process.env.AWS_REGION ??= 'us-east-1';
  }
  if (fauxqs !== undefined) process.env.TEST_SQS_ENDPOINT = fauxqs.endpoint;
  process.stderr.write(`\nlocal stack: S3 ${process.env.TEST_S3_ENDPOINT}${swift ? ` (Swift in ${swift.dir})` : ' (given)'}, `
    + `SQS/SNS ${process.env.TEST_SQS_ENDPOINT}${fauxqs ? ' (fauxqs)' : ' (given)'}; ready in ${Date.now() - begin} ms\n`);
  (globalThis as Record<symbol, unknown>)[LOCAL_STACK_KEY] = started;
}
