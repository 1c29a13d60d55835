// Placeholder so the gateway builds; the WebSocket routes engineer replaces this file.
import type { FastifyInstance } from 'fastify';
import type { GatewayOptions } from '../gateway-options.js';

export async function wsRawRoutes(_app: FastifyInstance, _opts: { options: GatewayOptions }): Promise<void> {}
