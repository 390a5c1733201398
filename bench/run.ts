import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { formatResult } from './harness.js';
import { SCENARIOS } from './scenarios.js';

/**
 * `npm run bench [-- <part of a name>]`: every selected scenario runs in a process of its own
 * (`--only <name>`), so what one leaves behind — the Ory Polis peer keeps module-level database
 * handles and timers, a scenario's heap and sockets — cannot fail or slow the next one.
 */
const ONLY = '--only';
const args = process.argv.slice(2);

if (args[0] === ONLY) {
  const scenario = SCENARIOS.find((s) => s.name === args[1]);
  if (!scenario) throw new Error(`no scenario named ${args[1]}`);
  for (const result of await scenario.run()) process.stdout.write(`${formatResult(result)}\n`);
} else {
  const filter = args[0];
  const selected = SCENARIOS.filter((s) => !filter || s.name.includes(filter));
  let failed = 0;
  for (const scenario of selected) {
    process.stdout.write(`# ${scenario.name}\n`);
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ONLY, scenario.name],
      {
        stdio: 'inherit',
      },
    );
    if (child.status !== 0) {
      failed += 1;
      process.stdout.write(`# ${scenario.name} failed (exit ${child.status ?? child.signal})\n`);
    }
  }
  process.exitCode = failed === 0 ? 0 : 1;
}
