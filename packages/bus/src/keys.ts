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
     * Stream: a topic's records in the order they were acked, while relays have subscribers
     * to it (`watchedTopics`). Entry ids are `0-<position>`.
     */
    topicStream: (topic: string) => `${prefix}:topic:${topic}`,
    /**
     * Stream: anchoring changes of batches holding a watched topic's records (entries
     * `{anchor, positions}`), for its subscribers.
     */
    topicAnchoring: (topic: string) => `${prefix}:topic-anchoring:${topic}`,
    /** String (integer): a topic's last position given (1, 2, 3… in ack order). */
    topicPosition: (topic: string) => `${prefix}:topic-position:${topic}`,
    /**
     * Sorted set: topic → until when (ms, Redis clock) some relay has subscribers to it and
     * wants its records in its stream. Relays refresh their topics' scores.
     */
    watchedTopics: `${prefix}:watched-topics`,
    /**
     * String (expiring): the topic positions a `recordBatch` job's records were given, in
     * record order, comma-separated; written with the job, deleted by the writer once stored.
     */
    positions: (jobId: string) => `${prefix}:positions:${jobId}`,
  } as const;
}
export type Keys = ReturnType<typeof createKeys>;
