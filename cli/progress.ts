import cliProgress from 'cli-progress';
import type { ArchiveEvent } from '../lib/archive/types.js';
import { formatBytes } from './format.js';

/**
 * Progress on stderr: a live bar (bytes, rate, files) when stderr is a terminal, plain
 * lines every few seconds when it is not. Log lines are routed through `log()` so they do
 * not tear the bar.
 */
export interface Progress {
  onEvent(event: ArchiveEvent): void;
  log(text: string): void;
  stop(): void;
}

interface Counters {
  bytes: number;
  estimatedBytes: number;
  filesDone: number;
  filesTotal: number;
  startedAt: number;
}

function rate(c: Counters): string {
  const seconds = (Date.now() - c.startedAt) / 1000;
  return seconds > 0 ? `${formatBytes(Math.round(c.bytes / seconds))}/s` : '-';
}

export function createProgress(stream: NodeJS.WriteStream, enabled: boolean): Progress {
  const c: Counters = { bytes: 0, estimatedBytes: 0, filesDone: 0, filesTotal: 0, startedAt: Date.now() };
  const tally = (event: ArchiveEvent): void => {
    if (event.type === 'backup-start') {
      c.filesTotal += event.files;
      c.estimatedBytes += event.estimatedBytes;
    } else if (event.type === 'bytes') {
      c.bytes += event.delta;
    } else if (event.type === 'file-done') {
      c.filesDone += 1;
      if (event.reused) c.bytes += event.bytes;
    }
  };

  if (!enabled) {
    return { onEvent: () => undefined, log: (t) => stream.write(t.endsWith('\n') ? t : `${t}\n`), stop: () => undefined };
  }

  if (!stream.isTTY) {
    let lastLine = 0;
    const print = (force: boolean): void => {
      if (!force && Date.now() - lastLine < 5000) return;
      if (c.filesTotal === 0) return;
      lastLine = Date.now();
      stream.write(`progress: ${formatBytes(c.bytes)} of ~${formatBytes(c.estimatedBytes)}, ${rate(c)}, files ${c.filesDone}/${c.filesTotal}\n`);
    };
    let stopped = false;
    return {
      onEvent(event) {
        tally(event);
        print(event.type === 'file-done' || event.type === 'backup-done');
      },
      log: (t) => stream.write(t.endsWith('\n') ? t : `${t}\n`),
      stop: () => {
        if (!stopped) print(true);
        stopped = true;
      },
    };
  }

  const multi = new cliProgress.MultiBar({
    stream,
    format: ' {bar} {percentage}% | {done} of ~{total_h} | {rate} | files {files}',
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 5,
  });
  const bar = multi.create(1, 0, { done: '0 B', total_h: '?', rate: '-', files: '0/0' });
  let stopped = false;
  const render = (): void => {
    bar.setTotal(Math.max(c.estimatedBytes, c.bytes, 1));
    bar.update(c.bytes, { done: formatBytes(c.bytes), total_h: formatBytes(c.estimatedBytes), rate: rate(c), files: `${c.filesDone}/${c.filesTotal}` });
  };
  return {
    onEvent(event) {
      tally(event);
      render();
    },
    log: (t) => multi.log(t.endsWith('\n') ? t : `${t}\n`),
    stop() {
      if (stopped) return;
      stopped = true;
      render();
      // GES's sizes are estimates: once every file is done, the true total is what arrived.
      if (c.filesTotal > 0 && c.filesDone === c.filesTotal) {
        bar.setTotal(Math.max(c.bytes, 1));
        bar.update(c.bytes);
      }
      multi.stop();
    },
  };
}
