#!/usr/bin/env node
// Committed (not built) so that `npm ci` can link the `loupe` command before anything is compiled.
import '../dist/main.js';
