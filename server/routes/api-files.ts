// Files HTTP API: replaced below once the files client lands.
import type { FastifyInstance } from 'fastify';

export async function apiFilesRoutes(_app: FastifyInstance): Promise<void> {}
