import { createLogger, type Logger } from '../../lib/log.js';

/** The container-wide logger (JSON on stderr); handlers get a per-invocation child from the middy stack. */
export const rootLogger: Logger = createLogger({ base: { service: 'ges-archiver' } });
