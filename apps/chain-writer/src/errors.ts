import { ServiceError } from '@streamanchor/service-kit';

/** Base of the writer's errors. */
export class WriterError extends ServiceError {
  override name = 'WriterError';
}

/** The RPC serves another chain than CHAIN_ID says: refusing to sign anything. */
export class ChainIdMismatchError extends WriterError {
  override name = 'ChainIdMismatchError';
  constructor(expected: number, actual: number, rpc: string) {
    super(`RPC reports chain id ${actual}, but CHAIN_ID is ${expected}`, { expected, actual, rpc });
  }
}

/** No contract code at CONTRACT_ADDRESS on this chain. */
export class ContractNotFoundError extends WriterError {
  override name = 'ContractNotFoundError';
  constructor(contract: string, chainId: number) {
    super(`no contract code at ${contract} on chain ${chainId}`, { contract, chainId });
  }
}

/** The signer lacks WRITER_ROLE on the contract: every anchor would revert. */
export class MissingWriterRoleError extends WriterError {
  override name = 'MissingWriterRoleError';
  constructor(signer: string, contract: string) {
    super(`signer ${signer} does not hold WRITER_ROLE on ${contract}`, { signer, contract });
  }
}

/** A `records` job whose data does not match RecordBatchJob; it is failed without retries. */
export class MalformedJobError extends WriterError {
  override name = 'MalformedJobError';
  constructor(jobId: string | undefined, problem: string) {
    super(`malformed records job ${jobId ?? '(no id)'}: ${problem}`, { jobId, problem });
  }
}

/** Another writer process holds this signer's nonce lock. */
export class SignerLockedError extends WriterError {
  override name = 'SignerLockedError';
  constructor(signer: string, holder: string) {
    super(`another writer (${holder}) owns the nonce of signer ${signer}`, { signer, holder });
  }
}
