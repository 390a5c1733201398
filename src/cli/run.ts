import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, type Config } from '../config/config.js';
import { adminClient, CliError, operatorToken, UsageError, type AdminClient } from './admin-client.js';
import { COMMANDS, type Command, type Values } from './commands.js';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
}

const GLOBAL_OPTIONS = { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

export function usage(): string {
  return [
    'Usage: gatehouse <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.usage}`),
    '',
    'Every command but migrate calls the admin API:',
    '  --url URL   Gatehouse base URL (default: GATEHOUSE_BASE_URL, else http://localhost:PORT)',
    '  operator token from GATEHOUSE_ADMIN_TOKEN, else <GATEHOUSE_DATA_DIR>/admin-token',
    'migrate applies pending migrations to DATABASE_URL (or the embedded database), as the server does.',
    'Answers are printed as JSON on stdout; errors go to stderr (exit 1; usage errors exit 2).',
  ].join('\n');
}

/** `db:setup` (npm run db:setup) is migrate's older name. */
const ALIASES: Record<string, string> = { 'db:setup': 'migrate' };

function findCommand(positionals: string[]): Command | undefined {
  const [first = '', second = ''] = positionals;
  const one = ALIASES[first] ?? first;
  return COMMANDS.find((c) => c.name === one) ?? COMMANDS.find((c) => c.name === `${one} ${second}`);
}

/** Runs one command line; returns the exit status. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const positionals = argv.filter((a) => !a.startsWith('-')).slice(0, 2);
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    (argv.length === 0 ? io.stderr : io.stdout)(`${usage()}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const command = findCommand(positionals);
  if (!command) {
    io.stderr(`gatehouse: unknown command "${positionals.join(' ')}"\n\n${usage()}\n`);
    return 2;
  }
  const words = command.name.split(' ').length;
  let values: Values;
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...command.options, ...GLOBAL_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.positionals.length > words)
      throw new UsageError(`unexpected argument "${parsed.positionals[words]}"`);
    values = parsed.values;
  } catch (error) {
    io.stderr(`gatehouse: ${(error as Error).message}\nUsage: gatehouse ${command.usage}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`Usage: gatehouse ${command.usage}\n`);
    return 0;
  }

  let config: Config;
  try {
    config = parseConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`gatehouse: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  let client: AdminClient | undefined;
  const ctx = {
    config,
    api: async () => {
      const url = typeof values.url === 'string' ? values.url : config.baseUrl;
      if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError('--url must be an http(s) URL');
      client ??= adminClient(url, await operatorToken(config));
      return client;
    },
    readStdin: io.readStdin,
    log: (message: string) => io.stderr(`${message}\n`),
  };
  try {
    const result = await command.run(ctx, values);
    io.stdout(`${JSON.stringify(result ?? {}, null, 2)}\n`);
    return command.exitCode?.(result) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`gatehouse: ${error.message}\nUsage: gatehouse ${command.usage}\n`);
      return 2;
    }
    const message =
      error instanceof CliError ? error.message : `${(error as Error).message ?? String(error)}`;
    io.stderr(`gatehouse: ${message}\n`);
    return 1;
  }
}
