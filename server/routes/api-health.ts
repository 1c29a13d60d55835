// GET /api/health: each backend's status, no login needed, nothing secret (docs/api.md).

import type { FastifyInstance } from 'fastify';

export async function apiHealthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/api/health', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return app.healthRegistry.snapshot();
  });
}
