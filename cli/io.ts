/** What a command reads and writes: the arguments, the environment, stdout (the result) and stderr (logs, progress). */
export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}
