import { Type } from '@sinclair/typebox';

export const LogLevelSchema = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) =>
    Type.Literal(level),
  ),
  { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' },
);
