export { type App, type AppDeps, createApp, type RelayStats } from './app';
export { type Config, ConfigSchema, defaultRelayId, loadConfig } from './config';
export { RECORD_JOB_OPTIONS, validateMessage } from './records';
export { offerProblem, rtcConfigFor } from './sessions';
