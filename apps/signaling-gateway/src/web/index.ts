import { resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

export interface WebOptions {
  /** The built demo page (apps/web/dist). */
  root: string;
}

/**
 * Serves the demo page's files at / (index.html for /). Missing files fall through to
 * the problem+json not-found handler.
 */
export const webRoutes: FastifyPluginAsync<WebOptions> = async (app, { root }) => {
  await app.register(fastifyStatic, {
    root: resolve(root),
    prefix: '/',
    index: ['index.html'],
    wildcard: true,
  });
};
