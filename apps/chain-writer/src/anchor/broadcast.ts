import { BaseError, type Hex, HttpRequestError, TimeoutError } from 'viem';
import type { WriterPublicClient } from '../chain';
import { errorText } from './revert';

/** How the node answered eth_sendRawTransaction. */
export type BroadcastOutcome =
  | { kind: 'accepted' }
  /** The node already has this tx, or this nonce is taken care of (used, or a pooled tx holds it). */
  | { kind: 'known'; reason: string }
  /** Refused for another reason (fee cap below base fee, bad signature, …). */
  | { kind: 'rejected'; reason: string };

/** A node answer to eth_sendRawTransaction that means "this nonce/tx is taken care of". */
export const BENIGN_BROADCAST =
  /already known|known transaction|already imported|already exists|nonce too low|nonce has already been used|replacement transaction underpriced|AlreadyKnown/i;

export type BroadcastParameters = { rawTx: Hex };
export type BroadcastReturnType = BroadcastOutcome;

/** Sends signed bytes; never throws for a node's refusal (that is an outcome), only for transport errors. */
export async function broadcastRawTx(
  publicClient: WriterPublicClient,
  { rawTx }: BroadcastParameters,
): Promise<BroadcastReturnType> {
  try {
    await publicClient.sendRawTransaction({ serializedTransaction: rawTx });
    return { kind: 'accepted' };
  } catch (error) {
    const reason = errorText(error);
    if (BENIGN_BROADCAST.test(reason)) return { kind: 'known', reason };
    if (isTransportError(error)) throw error;
    return { kind: 'rejected', reason };
  }
}

/** No answer from the node at all (timeout, connection refused, HTTP error): not a refusal. */
function isTransportError(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError) !== null;
}
