/**
 * Every Redis key StreamAnchor writes, in one place. `prefix` isolates deployments
 * (and tests) that share a Redis; BullMQ's own keys live under `${prefix}:bull`.
 */
export function createKeys(prefix: string) {
  return {
    prefix,
    /** BullMQ `prefix` option. */
    bull: `${prefix}:bull`,
    /** Sorted set: relay id → last heartbeat (ms). */
    relays: `${prefix}:relays`,
    /** Hash: a relay's advertised info (see RelayInfo). Expires unless heartbeated. */
    relay: (relayId: string) => `${prefix}:relay:${relayId}`,
    /** Hash: which relay holds a session, and whose it is. Expires unless refreshed by the relay. */
    session: (sessionId: string) => `${prefix}:session:${sessionId}`,
    /** String (expiring): which chain-writer process owns a signer's nonce on a chain. */
    writerLock: (chainId: number, signer: string) =>
      `${prefix}:writer-lock:${chainId}:${signer.toLowerCase()}`,
    /**
     * Stream: a topic's records in the order they were acked (fan-out to subscribers on every
     * relay). Entry ids are `0-<position>`: the topic's position counter is the stream's own.
     */
    topicStream: (topic: string) => `${prefix}:topic:${topic}`,
    /**
     * String (expiring): the topic positions a `recordBatch` job's records were given, in
     * record order, comma-separated; written with the job, deleted by the writer once stored.
     */
    positions: (jobId: string) => `${prefix}:positions:${jobId}`,
  } as const;
}
export type Keys = ReturnType<typeof createKeys>;
