import { BaseError, ContractFunctionRevertedError } from 'viem';

/** The custom error (or reason) a contract call reverted with; undefined when it did not revert. */
export function revertErrorName(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) {
    return reverted.data?.errorName ?? reverted.reason ?? 'unknown revert';
  }
  return undefined;
}

/** One line for logs: viem's shortMessage and details, or the message. */
export function errorText(error: unknown): string {
  if (error instanceof BaseError) return `${error.shortMessage} ${error.details ?? ''}`;
  return error instanceof Error ? error.message : String(error);
}
