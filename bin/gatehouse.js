#!/usr/bin/env node
// The operator CLI; its code is compiled to dist/ (npm run build).
import '../dist/src/cli/main.js';
