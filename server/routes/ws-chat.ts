// /ws/chat: one TCP connection to the chat service per browser socket. The gateway says hello itself,
// with the account name as nickname and the gateway token (which lets several tabs share a nick);
// the browser's JSON requests are validated (protocol/browser-messages.ts) and re-encoded as frames,
// and the service's frames are relayed to the browser as JSON text.

import type { FastifyInstance } from 'fastify';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl } from '../upstream/backend-url.js';
import {
  endsSocket,
  parseJsonMessage,
  refOf,
  validateChatRequest,
  type BrowserChatRequest,
} from '../../protocol/browser-messages.js';
import { CHAT_LIMITS } from '../../protocol/chat-messages.js';
import { isSockbridgeError } from '../../protocol/errors.js';
import {
  BackendLink,
  acceptBrowserSocket,
  onBrowserMessage,
  readSecret,
  reportBackendFailure,
  sendRefusal,
} from './ws-common.js';

export async function wsChatRoutes(app: FastifyInstance, opts: { options: GatewayOptions }): Promise<void> {
  const { options } = opts;
  const { limits } = options;
  const chatAddress = parseBackendUrl(options.chat, 'tcp', 'chat service');
  const gatewayToken = readSecret(options.chatGatewayToken, options.chatGatewayTokenFile, options.data, 'chat-gateway.secret');
  if (!gatewayToken) {
    app.log.warn(
      'no chat gateway token (chatGatewayToken or DATA/chat-gateway.secret): each account can open one chat tab at a time, ' +
        'and the chat service serves no direct-message history (give both sides the token; `sockbridge start` always has one)',
    );
  }

  app.get('/ws/chat', { websocket: true, preValidation: app.wsGuard() }, (socket, request) => {
    const accepted = acceptBrowserSocket(app, socket, request, 'chat');
    if (!accepted) return;
    const { logger } = accepted;

    const link = new BackendLink(socket, {
      service: 'chat',
      address: chatAddress,
      highWaterBytes: limits.wsHighWaterBytes,
      // chat frames are headers only: a body is garbage; but a `joined` carries the room's history
      // (up to 100 messages of 4096 bytes), far past the codec's default 64 KiB header limit
      maxBodyBytes: 0,
      maxHeaderBytes: CHAT_LIMITS.eventMaxBytes,
      logger,
      onHeader(header) {
        if (header.cmd === 'welcome') app.health.markUp('chat');
        const { size: _size, ...event } = header;
        link.sendToBrowser(JSON.stringify(event), false);
      },
      onFailure(err) {
        reportBackendFailure(socket, err, { service: 'chat', logger, markDown: (s, r) => app.health.markDown(s, r) });
      },
    });
    link.sendFrame(gatewayToken ? { cmd: 'hello', nick: accepted.username, gatewayToken } : { cmd: 'hello', nick: accepted.username });

    onBrowserMessage(socket, {
      maxBytes: limits.wsMaxMessageBytes,
      logger,
      onText(text) {
        const message = parseJsonMessage(text);
        let request: BrowserChatRequest;
        try {
          request = validateChatRequest(message);
        } catch (err) {
          // A bad field is answered with the message's ref, so the page can mark that message failed.
          if (!isSockbridgeError(err) || endsSocket(err)) throw err;
          return sendRefusal(socket, err, refOf(message));
        }
        link.sendFrame(request);
      },
    });
  });
}
