#!/usr/bin/env node
// The one entry point for every process and tool of the project. It runs the compiled CLI,
// which `npm ci` builds through the `prepare` script.
import '../dist/main.js';
