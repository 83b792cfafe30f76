import { connect, type StreamAnchorSession } from '@streamanchor/client';

/** 'idle' only before the first connect (no token yet). */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'closed' | 'error';

export interface ConnectionHooks {
  /** Runs before each connect (e.g. loading /v1/info); a throw makes the connect fail. */
  prepare?(): Promise<unknown>;
  /** A new session opened: attach its listeners. */
  opened?(session: StreamAnchorSession): void;
  /** The session closed (by the relay or by `close`). */
  closed?(): void;
  changed(): void;
}

/**
 * One data-channel session of the demo page, as the publisher and the subscriber side each
 * hold one: connect (closing the previous one), state and error for the view, close.
 */
export class SessionConnection {
  state: ConnectionState = 'idle';
  error: string | null = null;
  #session: StreamAnchorSession | null = null;
  readonly #baseUrl: string;
  readonly #hooks: ConnectionHooks;

  constructor(baseUrl: string, hooks: ConnectionHooks) {
    this.#baseUrl = baseUrl;
    this.#hooks = hooks;
  }

  get session(): StreamAnchorSession | null {
    return this.#session;
  }

  async connect(token: string): Promise<void> {
    if (this.state === 'connecting' || this.state === 'open') await this.close();
    this.state = 'connecting';
    this.error = null;
    this.#hooks.changed();
    try {
      await this.#hooks.prepare?.();
      const session = await connect({ baseUrl: this.#baseUrl, token });
      this.#session = session;
      this.#hooks.opened?.(session);
      session.onStateChange((state) => {
        if (state === 'closed' && this.#session === session) {
          this.state = 'closed';
          this.#hooks.closed?.();
          this.#hooks.changed();
        }
      });
      this.state = session.state === 'open' ? 'open' : 'closed';
    } catch (error) {
      this.state = 'error';
      this.error = describe(error);
    }
    this.#hooks.changed();
  }

  async close(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.state = 'closed';
    this.#hooks.closed?.();
    this.#hooks.changed();
    await session.close().catch(() => undefined);
  }

  /** The open session; throws when there is none. */
  requireOpen(): StreamAnchorSession {
    if (!this.#session || this.state !== 'open')
      throw new Error(`Not connected (state ${this.state})`);
    return this.#session;
  }
}

export function describe(error: unknown): string {
  if (error && typeof error === 'object' && 'shortMessage' in error) {
    const { shortMessage, details } = error as { shortMessage: string; details?: string };
    return details ? `${shortMessage} (${details})` : shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}
