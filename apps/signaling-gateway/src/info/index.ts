export { buildInfo, HealthResponse, type InfoOptions, infoRoutes } from './routes';
