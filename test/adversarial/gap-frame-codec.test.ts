// Issue 5, "frame codec over TCP on every backend": the same hostile frames sent to the chat, exec
// and files ports. Each is refused with its typed error frame and that one connection closed, nothing
// is buffered for a declared length the service will never accept, no prototype is polluted, and a
// well-behaved client is served right afterwards. (chat-tcp, exec-tcp and files-tcp hold the cases
// specific to one service; this file holds the ones every frame port must pass alike.)
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatService } from '../../backends/chat/chat-service.js';
import { ExecClient } from '../../backends/exec/exec-client.js';
import { ExecService } from '../../backends/exec/exec-service.js';
import { FilesClient } from '../../backends/files/files-client.js';
import { FilesService } from '../../backends/files/files-service.js';
import { DEFAULT_MAX_HEADER_BYTES, encodeFrame, encodeFrameHead } from '../../protocol/frame-codec.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { RawPeer, stopFiles } from '../backends/files/harness.js';
import { lengthPrefix, rawFrame } from './raw-frames.js';

const CHAT_TOKEN = 'gap-chat-token-0123456789abcdef';
const EXEC_SECRET = 'gap-exec-secret-0123456789abcdef';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await stopFiles(); // destroys the RawPeer sockets
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  await removeTempDirs();
});

interface Backend {
  port: number;
  /** the service's header limit (its default: nothing is configured here) */
  maxHeaderBytes: number;
  /** a first request that is valid on a fresh connection, and the cmd of its reply */
  opening: Buffer;
  openingReply: string;
  /** a fresh, well-behaved client gets a full answer */
  stillServes(): Promise<void>;
  /** the files root, to check that nothing visible was written */
  root?: string;
}

type Kind = 'chat' | 'exec' | 'files';

async function start(kind: Kind): Promise<Backend> {
  if (kind === 'chat') {
    const service = new ChatService({ port: 0, linePort: null, dataDir: await tempDir(), gatewayToken: CHAT_TOKEN });
    const { port } = await service.start();
    closers.push(() => service.close());
    let n = 0;
    return {
      port,
      maxHeaderBytes: service.options.maxHeaderBytes,
      opening: encodeFrame({ cmd: 'hello', nick: 'opener' }),
      openingReply: 'welcome',
      async stillServes() {
        const peer = await RawPeer.connect(port);
        const nick = `good${++n}`;
        await peer.write(Buffer.concat([encodeFrame({ cmd: 'hello', nick }), encodeFrame({ cmd: 'say', room: 'lobby', text: 'still served', ref: 'ok' })]));
        expect(await nextMatching(peer, (h) => h['cmd'] === 'message' && h['ref'] === 'ok')).toMatchObject({ from: nick, text: 'still served' });
        peer.socket.destroy();
      },
    };
  }
  if (kind === 'exec') {
    const service = new ExecService({ port: 0, secret: EXEC_SECRET, killGraceMs: 200 });
    const { port } = await service.start();
    closers.push(() => service.close());
    return {
      port,
      // exec sets no header limit of its own: the codec's default applies
      maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
      opening: encodeFrame({ cmd: 'auth', secret: EXEC_SECRET }),
      openingReply: 'ready',
      async stillServes() {
        const client = await ExecClient.connect('127.0.0.1', port, EXEC_SECRET);
        try {
          const job = client.run({ argv: ['echo', 'served'] });
          const out: Buffer[] = [];
          job.on('stdout', (c: Buffer) => out.push(c));
          expect((await job.done).code).toBe(0);
          expect(Buffer.concat(out).toString()).toBe('served\n');
        } finally {
          await client.close();
        }
      },
    };
  }
  const root = join(await tempDir(), 'root');
  const service = new FilesService({ root, port: 0 });
  const { port } = await service.start();
  closers.push(() => service.close());
  return {
    port,
    root,
    maxHeaderBytes: service.options.maxHeaderBytes,
    opening: encodeFrame({ cmd: 'list' }),
    openingReply: 'list',
    async stillServes() {
      const client = await FilesClient.connect('127.0.0.1', port);
      try {
        const data = Buffer.from(`well behaved ${Math.random()}`);
        await client.put('well-behaved.txt', Readable.from([data]), data.length);
        const { stream } = await client.get('well-behaved.txt');
        const parts: Buffer[] = [];
        for await (const c of stream) parts.push(c as Buffer);
        expect(Buffer.concat(parts)).toEqual(data);
      } finally {
        await client.close();
      }
    },
  };
}

/** The first reply header matching `match` (earlier ones are skipped); rejects if the connection closes first. */
async function nextMatching(peer: RawPeer, match: (h: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  for (;;) {
    const { header } = await peer.next();
    if (match(header)) return header;
  }
}

/** Sends `bytes`, expects an error frame with `code`, then the service closing that connection. */
async function expectRefused(port: number, bytes: Buffer, code: string, before?: Buffer): Promise<void> {
  const peer = await RawPeer.connect(port);
  if (before) await peer.write(before);
  await peer.write(bytes);
  expect((await nextMatching(peer, (h) => h['cmd'] === 'error'))['code']).toBe(code);
  await peer.closed;
}

const KINDS: Kind[] = ['chat', 'exec', 'files'];

describe.each(KINDS)('frame codec on the %s port', (kind) => {
  it('refuses declared header lengths of 0, 2^32-1 and one past the limit, from the 4-byte prefix alone', async () => {
    const b = await start(kind);
    // Only the prefix is sent: a service that waited for (or allocated) the declared bytes would never answer.
    for (const length of [0, 0xffffffff, b.maxHeaderBytes + 1]) {
      await expectRefused(b.port, lengthPrefix(length), 'SB_ERR_FRAME_HEADER_LENGTH');
    }
    // exactly at the limit is not a length error (it is read, then judged as JSON)
    await expectRefused(b.port, rawFrame(`"${'x'.repeat(b.maxHeaderBytes - 2)}"`), 'SB_ERR_FRAME_HEADER_NOT_OBJECT');
    await b.stillServes();
  });

  it('refuses invalid JSON and a JSON non-object, closing only that connection', async () => {
    const b = await start(kind);
    const bystander = await RawPeer.connect(b.port);
    await bystander.write(b.opening);
    await nextMatching(bystander, (h) => h['cmd'] === b.openingReply);
    await expectRefused(b.port, rawFrame('{"cmd":"list",'), 'SB_ERR_FRAME_HEADER_JSON');
    await expectRefused(b.port, rawFrame('["list"]'), 'SB_ERR_FRAME_HEADER_NOT_OBJECT');
    await expectRefused(b.port, Buffer.concat([lengthPrefix(3), Buffer.from([0x7b, 0xff, 0x7d])]), 'SB_ERR_FRAME_HEADER_UTF8');
    expect(bystander.isClosed).toBe(false);
    await b.stillServes();
  });

  it.each([
    ['__proto__', '{"cmd":"CMD","__proto__":{"polluted":"yes"}}'],
    ['constructor', '{"cmd":"CMD","constructor":{"prototype":{"polluted":"yes"}}}'],
    ['nested __proto__', '{"cmd":"CMD","x":{"y":{"__proto__":{"polluted":"yes"}}}}'],
  ])('refuses a %s key and pollutes no prototype', async (_name, json) => {
    const b = await start(kind);
    const cmd = (JSON.parse(b.opening.subarray(4).toString()) as { cmd: string }).cmd;
    await expectRefused(b.port, rawFrame(json.replace('CMD', cmd)), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)['polluted']).toBeUndefined();
    await b.stillServes();
  });

  it('answers a valid request sent one byte at a time', async () => {
    const b = await start(kind);
    const peer = await RawPeer.connect(b.port);
    for (const byte of b.opening) {
      await peer.write(Buffer.of(byte));
      await new Promise((r) => setImmediate(r));
    }
    expect((await peer.next()).header['cmd']).toBe(b.openingReply);
    peer.socket.destroy();
    await b.stillServes();
  });

  it('drops a connection closed mid-frame (in the prefix, the header, or a body) and keeps serving', async () => {
    const b = await start(kind);
    const cuts = [
      b.opening.subarray(0, 2), // inside the length prefix
      b.opening.subarray(0, b.opening.length - 3), // inside the header
    ];
    if (kind === 'files') cuts.push(Buffer.concat([encodeFrameHead({ cmd: 'put', filename: 'cut.bin', resumable: false }, 1000), Buffer.alloc(500, 7)]));
    if (kind === 'exec') cuts.push(Buffer.concat([b.opening, encodeFrameHead({ cmd: 'run', id: 'r', argv: ['cat'], pty: false }), encodeFrameHead({ cmd: 'stdin', id: 'r' }, 1000), Buffer.alloc(10)]));
    for (const bytes of cuts) {
      const peer = await RawPeer.connect(b.port);
      await peer.write(bytes);
      peer.socket.end();
      await peer.closed;
    }
    await b.stillServes();
    if (b.root) {
      // the cut upload is nowhere to be seen (only the well-behaved client's file)
      expect((await readdir(b.root)).filter((n) => !n.startsWith('.'))).toEqual(['well-behaved.txt']);
    }
  });
});
