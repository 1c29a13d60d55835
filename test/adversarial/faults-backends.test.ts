// Issue 5, faults: a backend that resets the connection mid-stream, refuses connections, or answers
// garbage. Through the real gateway (listening on port 0) each must close that browser socket with
// 1011 (RFC 6455 §7.4.1 "internal error") after an SB_ERR_BACKEND_DOWN message, log the failure,
// show the service down in GET /api/health, keep the gateway serving, and work again as soon as the
// real service is back on its port. A small TCP server plays the misbehaving backend: it is a fault
// injector, not a stand-in for our services, which are the real classes.
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatService } from '../../backends/chat/chat-service.js';
import { ExecService } from '../../backends/exec/exec-service.js';
import { FilesService } from '../../backends/files/files-service.js';
import { encodeFrame } from '../../protocol/frame-codec.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { CHAT_TOKEN, EXEC_SECRET, closeAll, startGateway, track, waitFor, type Gateway, type TestSocket } from '../server/routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

type Fault = 'reset' | 'refuse' | 'garbage';
type FrameService = 'chat' | 'exec';

/** What each frame service's route needs: the account, the greeting its backend sends, the real service. */
const SERVICES = {
  chat: {
    path: '/ws/chat',
    user: ['alice', 'alice-password'],
    greeting: encodeFrame({ cmd: 'welcome', nick: 'alice', rooms: ['lobby'] }),
    greeted: 'welcome',
    async startReal(port: number) {
      const service = track(new ChatService({ port, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN }));
      await service.start();
    },
    /** a request that gets an answer once the socket is greeted */
    probe: { cmd: 'ping' },
    answer: 'pong',
  },
  exec: {
    path: '/ws/exec',
    user: ['root', 'root-password'],
    greeting: encodeFrame({ cmd: 'ready', allow: null, pty: false }),
    greeted: 'ready',
    async startReal(port: number) {
      const service = track(new ExecService({ port, secret: EXEC_SECRET, killGraceMs: 200 }));
      await service.start();
    },
    probe: { cmd: 'run', id: 'p', argv: ['true'], pty: false },
    answer: 'exit',
  },
} as const;

/** A port nothing listens on (bound, then released), so the real service can take it later. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The misbehaving backend. On the gateway's first request (hello / auth / list) it either sends a
 * valid greeting and half a frame, then a TCP reset (RST, not FIN: `resetAndDestroy`), or answers
 * bytes that are no frame at all (a declared header length of 2^32-1 followed by HTTP).
 */
async function faultInjector(port: number, fault: 'reset' | 'garbage', greeting: Buffer): Promise<{ accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => {
      if (fault === 'reset') {
        const next = encodeFrame({ cmd: 'message', room: 'lobby', from: 'x', text: 'cut short', ts: 0 });
        // A timer, not the write callback: on Node 20 resetAndDestroy() called from the write
        // callback ends with a FIN; one turn of the loop later it sends the RST we want.
        socket.write(Buffer.concat([greeting, next.subarray(0, next.length - 5)]), () => setTimeout(() => socket.resetAndDestroy(), 5));
      } else {
        socket.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')]));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const handle = {
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  track(handle);
  return handle;
}

async function health(gw: Gateway): Promise<Record<string, { status: string; reason?: string }>> {
  const res = await fetch(`${gw.origin}/api/health`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { services: Record<string, { status: string; reason?: string }> }).services;
}

/** The log lines (pino JSON) that match every key/value given. */
function logged(lines: string[], match: Record<string, unknown>): Record<string, unknown>[] {
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((entry) => Object.entries(match).every(([k, v]) => entry[k] === v));
}

async function expectBackendDown(socket: TestSocket): Promise<void> {
  expect(await socket.json((m) => m['cmd'] === 'error')).toMatchObject({ code: 'SB_ERR_BACKEND_DOWN' });
  expect((await socket.closed).code).toBe(1011);
}

describe.each(['chat', 'exec'] as const)('the %s service fails under the gateway', (name: FrameService) => {
  const svc = SERVICES[name];

  it.each(['reset', 'refuse', 'garbage'] as const)('%s: 1011 and a logged error, down in /api/health, back up when the service returns', async (fault: Fault) => {
    const port = await freePort();
    const injector = fault === 'refuse' ? undefined : await faultInjector(port, fault, svc.greeting);
    const lines: string[] = [];
    const gw = await startGateway({ [name]: `tcp://127.0.0.1:${port}` }, {}, lines);
    const cookie = await gw.login(svc.user[0], svc.user[1]);

    // a bystander on another service is not disturbed by this one failing
    const bystander = await gw.open('/ws/time', cookie);

    const socket = await gw.open(svc.path, cookie);
    if (fault === 'reset') await socket.json((m) => m['cmd'] === svc.greeted);
    await expectBackendDown(socket);
    if (injector) expect(injector.accepted()).toBe(1);

    // logged as an error of this service, with the reason and who was affected
    await waitFor(() => logged(lines, { msg: 'backend connection failed', service: name }).length > 0, 5000, 'the failure log line');
    const failure = logged(lines, { msg: 'backend connection failed', service: name })[0]!;
    expect(failure['user']).toBe(svc.user[0]);
    expect(String(failure['reason'])).toMatch(fault === 'reset' ? /ECONNRESET/ : fault === 'refuse' ? /ECONNREFUSED/ : /malformed frame \(SB_ERR_FRAME_HEADER_LENGTH\)/);
    if (fault === 'garbage') expect(logged(lines, { msg: 'backend sent a malformed frame', service: name, level: 50 })).toHaveLength(1);

    const down = (await health(gw))[name]!;
    expect(down.status).toBe('down');
    expect(down.reason).toBe(failure['reason']);

    // the gateway lives on: the bystander still gets its pong
    bystander.send({ cmd: 'ping', t0: 1 });
    expect(await bystander.json((m) => m['cmd'] === 'pong')).toMatchObject({ t0: 1 });

    // the real service comes back on the same port: a new socket works and health is up again
    await injector?.close();
    await svc.startReal(port);
    const again = await gw.open(svc.path, cookie);
    await again.json((m) => m['cmd'] === svc.greeted);
    again.send(svc.probe);
    await again.json((m) => m['cmd'] === svc.answer);
    expect((await health(gw))[name]!.status).toBe('up');
    expect(gw.app.server.listening).toBe(true);
  });
});

describe('the files service fails under the HTTP API', () => {
  const listing = (gw: Gateway, cookie: string) => fetch(`${gw.origin}/api/files`, { headers: { cookie } });
  const codeOf = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it('refused, then reset mid-reply: 503 SB_ERR_BACKEND_DOWN, down in /api/health, back up when the service returns', async () => {
    const port = await freePort();
    const gw = await startGateway({ files: `tcp://127.0.0.1:${port}` });
    const cookie = `sb_session=${await gw.login('alice', 'alice-password')}`;

    const refused = await listing(gw, cookie);
    expect(refused.status).toBe(503);
    expect(await codeOf(refused)).toBe('SB_ERR_BACKEND_DOWN');
    expect((await health(gw))['files']).toMatchObject({ status: 'down' });

    // half a list reply header, then RST
    const resetter = await faultInjector(port, 'reset', Buffer.alloc(0));
    const cut = await listing(gw, cookie);
    expect(cut.status).toBe(503);
    expect(await codeOf(cut)).toBe('SB_ERR_BACKEND_DOWN');
    expect(resetter.accepted()).toBe(1);
    expect((await health(gw))['files']).toMatchObject({ status: 'down' });
    await resetter.close();

    const service = track(new FilesService({ root: await tempDir(), port }));
    await service.start();
    const ok = await listing(gw, cookie);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ files: [] });
    expect((await health(gw))['files']!.status).toBe('up');
  });

  // Regression: FilesClient used to hand on the decoder's own error (SB_ERR_FRAME_HEADER_LENGTH, a 400).
  it('garbage: a reply that is no frame is 503 SB_ERR_BACKEND_DOWN and files shows down', async () => {
    const port = await freePort();
    const gw = await startGateway({ files: `tcp://127.0.0.1:${port}` });
    const cookie = `sb_session=${await gw.login('alice', 'alice-password')}`;
    const injector = await faultInjector(port, 'garbage', Buffer.alloc(0));
    const garbled = await listing(gw, cookie);
    expect(injector.accepted()).toBe(1);
    expect(garbled.status).toBe(503);
    expect(await codeOf(garbled)).toBe('SB_ERR_BACKEND_DOWN');
    expect((await health(gw))['files']).toMatchObject({ status: 'down' });
  });
});
