export { type App, type AppDeps, createApp } from './app';
export { type MintTokenOptions, mintToken, verifyToken } from './auth';
export { type Config, ConfigSchema, loadConfig, SERVICE_NAME } from './config';
