import { InitialSchema1764100000000 } from './1764100000000-initial-schema.js';

/** Every migration, in order. A new migration file is added here. */
export const MIGRATIONS = [InitialSchema1764100000000];
