import { formatResult } from './harness.js';
import { SCENARIOS } from './scenarios.js';

const filter = process.argv[2];
const selected = SCENARIOS.filter((s) => !filter || s.name.includes(filter));
for (const scenario of selected) {
  process.stdout.write(`# ${scenario.name}\n`);
  for (const result of await scenario.run()) process.stdout.write(`${formatResult(result)}\n`);
}
