// `pnpm run audit:verify`: recomputes the audit hash chain from the database and checks each
// anchored head on chain. Prints OK or the first broken seq; exits 1 on failure.
// Reads DATABASE_URL (or DATA_DIR for PGlite), RPC_URL and CONTRACT_ADDRESS, like the writer;
// `--require-final` also fails when an anchored head's batch is not final yet.

import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { openDatabase } from '@streamanchor/db';
import { parseEnv } from '@streamanchor/service-kit';
import { type Address, createPublicClient, http } from 'viem';
import { type AuditVerification, verifyAudit } from '../audit';

const VerifyEnvSchema = Type.Object({
  RPC_URL: Type.String({ pattern: '^https?://' }),
  CONTRACT_ADDRESS: Type.String({ pattern: '^0x[0-9a-fA-F]{40}$' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ default: '.data' }),
});

interface AuditVerifyOutput {
  exitCode: 0 | 1;
  line: string;
}

/** The CLI's one line of output for a verification. */
function describeVerification(result: AuditVerification): AuditVerifyOutput {
  if (!result.ok) {
    return { exitCode: 1, line: `audit log BROKEN at seq ${result.seq}: ${result.reason}` };
  }
  return {
    exitCode: 0,
    line:
      `audit log OK: ${result.entries} entries, head ${result.head?.seq ?? '-'}; ` +
      `${result.anchored} anchored heads verified on chain (${result.final} final), ` +
      `${result.pending} pending; last anchored seq ${result.lastAnchoredSeq ?? '-'}`,
  };
}

async function runAuditVerify(
  env: Record<string, string | undefined>,
  argv: readonly string[],
): Promise<AuditVerifyOutput> {
  const config = parseEnv('audit:verify', VerifyEnvSchema, env);
  const handle = await openDatabase({
    databaseUrl: config.DATABASE_URL,
    pgliteDir: join(config.DATA_DIR, 'pglite'),
  });
  try {
    const publicClient = createPublicClient({ transport: http(config.RPC_URL, { retryCount: 2 }) });
    const result = await verifyAudit({
      db: handle.db,
      publicClient,
      contract: config.CONTRACT_ADDRESS.toLowerCase() as Address,
      requireFinal: argv.includes('--require-final'),
    });
    return describeVerification(result);
  } finally {
    await handle.close();
  }
}

const { exitCode, line } = await runAuditVerify(process.env, process.argv.slice(2)).catch(
  (error: unknown): AuditVerifyOutput => ({
    exitCode: 1,
    line: `audit:verify failed: ${(error as Error).message}`,
  }),
);
(exitCode === 0 ? console.log : console.error)(line);
process.exitCode = exitCode;
