import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type BusDeps, createWorker, RemoteError, type TypedWorker } from '@streamanchor/bus';
import {
  CreateSessionRequest,
  DeleteSessionRequest,
  TrickleSessionRequest,
} from '@streamanchor/protocol';
import type { Logger } from '@streamanchor/service-kit';
import type { SessionManager } from './manager';
import { refusal } from './refusal';

const createCheck = TypeCompiler.Compile(CreateSessionRequest);
const deleteCheck = TypeCompiler.Compile(DeleteSessionRequest);
const trickleCheck = TypeCompiler.Compile(TrickleSessionRequest);

/**
 * The relay's control queue (request/reply from the gateway): `createSession` →
 * `{ answerSdp }`, `deleteSession` → `{ deleted }`, `trickleSession` → `{ outcome, etag }`. Refusals are RemoteErrors with a code from RELAY_ERRORS (see `refusal`).
 */
export function createControlWorker({
  bus,
  relayId,
  manager,
  logger,
  concurrency = 32,
}: {
  bus: BusDeps;
  relayId: string;
  manager: SessionManager;
  logger: Logger;
  concurrency?: number;
}): TypedWorker<'relayControl'> {
  const worker = createWorker(
    bus,
    'relayControl',
    relayId,
    async (job) => {
      switch (job.name) {
        case 'createSession': {
          if (!createCheck.Check(job.data))
            throw refusal('invalid_request', 'createSession: malformed job data');
          return manager.create(job.data);
        }
        case 'deleteSession': {
          if (!deleteCheck.Check(job.data))
            throw refusal('invalid_request', 'deleteSession: malformed job data');
          // Past its deadline the gateway no longer waits, but the client still wants the
          // session gone: delete anyway.
          return { deleted: await manager.delete(job.data.sessionId) };
        }
        case 'trickleSession': {
          if (!trickleCheck.Check(job.data))
            throw refusal('invalid_request', 'trickleSession: malformed job data');
          if (Date.now() > job.data.deadline)
            throw refusal('deadline_exceeded', 'the request expired before the relay took it');
          return manager.trickle(job.data);
        }
        default:
          throw refusal('invalid_request', `unknown job ${String(job.name)}`);
      }
    },
    { concurrency },
  );
  worker.on('error', (error) => logger.warn({ err: error }, 'control worker error'));
  worker.on('failed', (job, error) => {
    if (error instanceof RemoteError)
      logger.debug({ jobId: job?.id, code: error.code }, 'control request refused');
    else logger.warn({ jobId: job?.id, err: error }, 'control request failed');
  });
  return worker;
}
