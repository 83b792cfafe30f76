#!/usr/bin/env node
// The `streamanchor` command. It runs src/main.ts from its TypeScript source through tsx's
// loader, in this process, as the repository's other commands and services run (no build).
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
