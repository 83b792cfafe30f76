export {
  createLeaderElection,
  type Fence,
  FencedError,
  LEADER_APPLICATION_NAME,
  LEADER_LOCK_CLASS,
  type LeaderElection,
  type LeaderElectionDeps,
  type Term,
} from './election';
