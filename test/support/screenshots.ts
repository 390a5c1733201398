import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Where the browser tests write their screenshots: a folder under the system's temporary directory, so
 * `npm test` leaves the checkout as it found it. `npm run docs:screenshots` sets GATEHOUSE_SCREENSHOTS to
 * docs/portal and runs the tests that take them, refreshing the pictures docs/portal.md shows.
 */
export const SHOTS = process.env.GATEHOUSE_SCREENSHOTS
  ? path.resolve(process.env.GATEHOUSE_SCREENSHOTS)
  : path.join(tmpdir(), 'gatehouse-screenshots');

mkdirSync(SHOTS, { recursive: true });
