import { parseArgs } from 'node:util';
import { ConfigError, configWarnings, parseConfig, type Config } from '../config/config.js';
import { adminClient, CliError, operatorToken, UsageError, type AdminClient } from './admin-client.js';
import { COMMANDS as CREATE_COMMANDS, type Command, type Values } from './commands.js';
import { RESOURCE_COMMANDS } from './resource-commands.js';

/** Every command, a group's together (`connections create`, `… list`, `… show`) in the order first met. */
const COMMANDS: Command[] = (() => {
  const all = [...CREATE_COMMANDS, ...RESOURCE_COMMANDS];
  const groups = [...new Set(all.map((c) => groupOf(c)))];
  return groups.flatMap((g) => all.filter((c) => groupOf(c) === g));
})();

function groupOf(command: Command): string {
  return command.name.split(' ')[0] ?? command.name;
}

/** `gatehouse connections`: the group's subcommands, or undefined when `name` is not a group. */
export function groupUsage(name: string): string | undefined {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${name} `));
  if (members.length === 0) return undefined;
  return [
    `Usage: gatehouse ${name} <command> [options]`,
    '',
    'Commands:',
    ...members.map((c) => `  ${c.usage}`),
  ].join('\n');
}

/** What to do next, after an admin API refusal the operator can act on. */
const HINTS: Record<string, string> = {
  dns_record_not_found:
    'publish the TXT record the domain answer names (domains list), or, where DNS cannot be reached (local use): ' +
    'gatehouse domains verify --tenant … --domain … --manual --reason TEXT',
  dns_record_mismatch: 'the published TXT value differs from the challenge: compare it with `domains list`',
  dns_unavailable: 'the DNS server did not answer: retry, or check GATEHOUSE_DNS_SERVERS on the server',
  idp_entity_id_in_use: 'to create another connection to the same IdP anyway, add --force',
};

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
  const group = positionals[0] === undefined ? undefined : groupUsage(positionals[0]);
  if (!command && group !== undefined) {
    // `gatehouse connections` alone, or with --help: the group's subcommands.
    const asked = argv.includes('--help') || argv.includes('-h');
    if (positionals.length > 1) io.stderr(`gatehouse: unknown command "${positionals.join(' ')}"\n\n`);
    (asked && positionals.length === 1 ? io.stdout : io.stderr)(`${group}\n`);
    return asked && positionals.length === 1 ? 0 : 2;
  }
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
    const allowed = words + (command.args?.length ?? 0);
    if (parsed.positionals.length > allowed)
      throw new UsageError(`unexpected argument "${parsed.positionals[allowed]}"`);
    values = { ...parsed.values, args: parsed.positionals.slice(words) };
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
  // A mistyped GATEHOUSE_* variable would silently leave a setting at its default.
  for (const warning of configWarnings(io.env)) io.stderr(`gatehouse: warning: ${warning}\n`);
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
    const code = error instanceof CliError ? error.code : undefined;
    const hint = code !== undefined && Object.hasOwn(HINTS, code) ? HINTS[code] : undefined;
    io.stderr(`gatehouse: ${message}\n${hint === undefined ? '' : `  hint: ${hint}\n`}`);
    return 1;
  }
}
