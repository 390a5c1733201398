import { z } from 'zod';

/** Names of settings that hold secrets: redacted wherever the config is shown. */
export const SECRET_KEYS = ['databaseUrl', 'databaseAppUrl', 'adminToken', 'masterKey'] as const;

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const booleanFlag = z
  .enum(['true', 'false', '1', '0'])
  .default('false')
  .transform((v) => v === 'true' || v === '1');

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

/**
 * Every setting Gatehouse reads, from environment variables. Parsed once at start
 * (src/main.ts) and passed down; nothing else reads process.env.
 */
export const configSchema = z
  .object({
    DATABASE_URL: postgresUrl.optional(),
    GATEHOUSE_DATABASE_APP_URL: postgresUrl.optional(),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().min(1).default('0.0.0.0'),
    GATEHOUSE_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    GATEHOUSE_DATA_DIR: z.string().min(1).default('./.gatehouse'),
    GATEHOUSE_ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
    GATEHOUSE_MASTER_KEY: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 bytes, base64url-encoded (43 characters)')
      .optional(),
    GATEHOUSE_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(5433),
    LOG_LEVEL: z.enum(logLevels).default('info'),
    GATEHOUSE_ACCESS_TOKEN_TTL: seconds(300),
    GATEHOUSE_ID_TOKEN_TTL: seconds(300),
    GATEHOUSE_REFRESH_TOKEN_TTL: seconds(30 * 24 * 3600),
    GATEHOUSE_SESSION_TTL: seconds(12 * 3600),
    GATEHOUSE_BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 1mb')
      .default('1mb'),
    GATEHOUSE_SHUTDOWN_TIMEOUT: z.coerce.number().int().positive().max(9).default(8),
    GATEHOUSE_TRUST_PROXY: booleanFlag,
    GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: z.coerce.number().int().positive().default(20),
  })
  .transform((env) => {
    const port = env.PORT;
    return {
      databaseUrl: env.DATABASE_URL,
      databaseAppUrl: env.GATEHOUSE_DATABASE_APP_URL,
      port,
      host: env.HOST,
      baseUrl: (env.GATEHOUSE_BASE_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
      dataDir: env.GATEHOUSE_DATA_DIR,
      adminToken: env.GATEHOUSE_ADMIN_TOKEN,
      masterKey: env.GATEHOUSE_MASTER_KEY,
      embeddedPgPort: env.GATEHOUSE_EMBEDDED_PG_PORT,
      logLevel: env.LOG_LEVEL,
      tokens: {
        accessTokenTtl: env.GATEHOUSE_ACCESS_TOKEN_TTL,
        idTokenTtl: env.GATEHOUSE_ID_TOKEN_TTL,
        refreshTokenTtl: env.GATEHOUSE_REFRESH_TOKEN_TTL,
        sessionTtl: env.GATEHOUSE_SESSION_TTL,
      },
      bodyLimit: env.GATEHOUSE_BODY_LIMIT,
      shutdownTimeoutSeconds: env.GATEHOUSE_SHUTDOWN_TIMEOUT,
      trustProxy: env.GATEHOUSE_TRUST_PROXY,
      /** Failed admin authentications per source address per minute before 429. */
      adminAuthFailureLimit: env.GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT,
    };
  });

export type Config = z.infer<typeof configSchema>;

/** A configuration that could not be parsed; `problems` lists every one of them. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty variable means "not set", as shells and compose files write it.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/** The config as it may be logged: secrets replaced, URLs stripped of passwords. */
export function redactConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) {
    const value = config[key];
    if (value === undefined) continue;
    shown[key] = key.startsWith('database') ? redactUrl(value) : '[redacted]';
  }
  return shown;
}

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = 'redacted';
    return url.toString();
  } catch {
    return '[redacted]';
  }
}
