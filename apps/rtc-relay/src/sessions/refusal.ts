import { RemoteError } from '@streamanchor/bus';
import type { RelayErrorCode } from '@streamanchor/protocol';

/**
 * The one way the relay refuses a control request: a RemoteError whose code is in
 * RELAY_ERRORS (@streamanchor/protocol), where the gateway finds the problem it maps to.
 */
export function refusal(code: RelayErrorCode, detail: string): RemoteError {
  return new RemoteError(code, detail);
}
