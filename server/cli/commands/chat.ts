// `sockbridge chat HOST:PORT --nick N [--room R] [--timeout MS]`: chat in a terminal.
// On a TTY: an interactive prompt (/join R, /leave [R], /msg NICK TEXT, /who [R], /rooms, /quit).
// Piped: each stdin line is said in the room (slowed down, never dropped, when rate-limited), and
// the command exits once stdin has ended and the server has acknowledged the last line; a line not
// acknowledged within --timeout ends the chat (exit 1).
// Everything the service sent (text, nicks, rooms, error messages) is stripped of control characters
// before it reaches the terminal; ChatClient has already refused events of the wrong shape.

import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChatClient, ChatRefusal, newRef } from '../../../backends/chat/chat-client.js';
import { sanitizeForTerminal as clean } from '../../../backends/chat/terminal-text.js';
import { DEFAULT_ROOM, type ChatEvent, type DirectMessage } from '../../../protocol/chat-messages.js';
import { isSockbridgeError, sbError } from '../../../protocol/errors.js';
import { parseCommandLine, parseHostPort } from '../args.js';
import { flagValuesWithDefaults } from '../flag-values.js';

const USAGE = 'sockbridge chat HOST:PORT --nick N [--room R] [--timeout MS]';
/** The chat's own flags, checked like every other flag value (flag-values.ts). */
const CHAT_FLAGS = {
  properties: {
    // ms to wait for the service to acknowledge a line before giving up on the connection
    timeout: { type: 'integer', minimum: 1, maximum: 600_000, default: 10_000 },
  },
} as const;
const HELP =
  '/join ROOM, /leave [ROOM], /msg NICK TEXT, /who [ROOM], /rooms, /quit; anything else is said in the current room. ' +
  '~nick: sent by a client without an account (nothing vouches for the name)';
/** A piped line refused for its rate is retried this many times before it counts as failed. */
const MAX_RETRIES = 20;

const cleanList = (names: readonly string[]) => names.map(clean).join(', ');
/** The sender as shown: an account's name as it is, any other nick marked with `~`, as the web marks it "guest". */
const sender = (m: { from: string; account?: boolean }) => `${m.account ? '' : '~'}${clean(m.from)}`;
/** `, and N more`: the service lists only the fullest rooms, and says how many there are in all. */
const andMore = (count: number): string => (count > 0 ? `, and ${count} more` : '');

/** The one line that reports the end of the connection: why, unless it simply closed. */
function closeLine(reason: Error | undefined): string {
  if (reason === undefined || isSockbridgeError(reason, 'SB_ERR_CONNECT')) return 'connection to the chat service closed';
  return `connection to the chat service closed: ${clean(reason.message)}`;
}

const hhmm = (ts: number) => {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { nick: { type: 'string' }, room: { type: 'string' }, timeout: { type: 'string' } }, USAGE);
  const { host, port } = parseHostPort(positionals[0], USAGE, '127.0.0.1:7001');
  const nick = values['nick'];
  if (typeof nick !== 'string') throw sbError('SB_ERR_USAGE', `--nick is required\nusage: ${USAGE}`);
  const room = typeof values['room'] === 'string' ? values['room'] : DEFAULT_ROOM;
  const replyTimeoutMs = flagValuesWithDefaults(CHAT_FLAGS, { timeout: values['timeout'] })['timeout'] as number;
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);

  const client = await ChatClient.connect(host, port, { nick, room, replyTimeoutMs });
  const session = new TerminalChat(client, room, interactive);
  return session.run();
}

class TerminalChat {
  private current: string;
  private failures = 0;
  private ended = false;
  private readonly rl: readline.Interface;

  constructor(
    private readonly client: ChatClient,
    room: string,
    private readonly interactive: boolean,
  ) {
    this.current = room;
    this.rl = readline.createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
    this.rl.setPrompt(`${clean(client.nick)}> `);
    // Ctrl-C ends the chat (with no listener, readline would only pause).
    this.rl.on('SIGINT', () => this.rl.close());
    client.on('event', (event) => this.show(event));
  }

  async run(): Promise<number> {
    const closed = new Promise<number>((resolve) =>
      this.client.once('close', () => {
        if (!this.ended) this.print(`! ${closeLine(this.client.closeReason)}`);
        this.rl.close(); // stop reading stdin, so the process can exit
        resolve(this.exitCode());
      }),
    );
    const input = (async () => {
      if (this.interactive) this.rl.prompt();
      for await (const line of this.rl) {
        const ok = await this.onLine(line);
        if (!ok) break;
        if (this.interactive) this.rl.prompt();
      }
      this.ended = true;
      this.rl.close();
      await this.client.close();
      return this.exitCode();
    })();
    return Promise.race([input, closed]);
  }

  /** 0 when input ended (or /quit) with every line accepted; 1 after a refusal or a lost connection. */
  private exitCode(): number {
    return this.ended && this.failures === 0 ? 0 : 1;
  }

  /** Handles one line of input; false means /quit. */
  private async onLine(raw: string): Promise<boolean> {
    const line = raw.trim();
    if (!line) return true;
    try {
      if (!line.startsWith('/')) {
        await this.say(line);
        return true;
      }
      const [command = '', arg1, ...more] = line.split(/\s+/);
      switch (command) {
        case '/quit':
          return false;
        case '/help':
          this.print(`* ${HELP}`);
          return true;
        case '/join':
          if (!arg1) throw new Error('usage: /join ROOM');
          this.client.send({ cmd: 'join', room: arg1 }); // "joined" makes it the current room
          return true;
        case '/leave':
          this.client.send({ cmd: 'leave', room: arg1 ?? this.current });
          return true;
        case '/msg':
          if (!arg1 || more.length === 0) throw new Error('usage: /msg NICK TEXT');
          await this.client.dm(arg1, line.replace(/^\/msg\s+\S+\s+/, ''));
          return true;
        case '/who':
          this.client.send({ cmd: 'who', room: arg1 ?? this.current });
          return true;
        case '/rooms':
          this.client.send({ cmd: 'rooms' });
          return true;
        default:
          throw new Error(`unknown command ${command}; ${HELP}`);
      }
    } catch (err) {
      this.failures++;
      // The end of the connection is reported once, by the 'close' listener in run().
      if (err !== this.client.closeReason) this.print(`! ${clean((err as Error).message)}`);
      return true;
    }
  }

  /**
   * Says a line in the current room, waiting out rate limits rather than dropping it. Every attempt
   * carries the same ref, so the service posts the line at most once however many it sees.
   */
  private async say(text: string): Promise<void> {
    const ref = newRef();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.say(this.current, text, ref);
        return;
      } catch (err) {
        if (!(err instanceof ChatRefusal) || err.code !== 'SB_ERR_RATE_LIMITED' || attempt >= MAX_RETRIES) throw err;
        await sleep(err.retryAfterMs ?? 1000);
      }
    }
  }

  private directLine(m: DirectMessage): string {
    return m.from === this.client.nick && !m.account
      ? `[${hhmm(m.ts)}] -> *${clean(m.to)}* ${clean(m.text)}`
      : `[${hhmm(m.ts)}] *${sender(m)}* ${clean(m.text)}`;
  }

  private show(event: ChatEvent): void {
    switch (event.cmd) {
      case 'message': {
        const where = event.room === this.current ? '' : `#${clean(event.room)} `;
        this.print(`[${hhmm(event.ts)}] ${where}${sender(event)}: ${clean(event.text)}`);
        return;
      }
      case 'direct':
        this.print(this.directLine(event));
        return;
      case 'presence':
        this.print(`[${hhmm(Date.now())}] * ${clean(event.nick)} ${event.event === 'join' ? 'joined' : 'left'} #${clean(event.room)}`);
        return;
      case 'joined':
        this.current = event.room;
        for (const m of event.history) this.print(`[${hhmm(m.ts)}] ${m.room === this.current ? '' : `#${clean(m.room)} `}${sender(m)}: ${clean(m.text)}`);
        this.print(`* joined #${clean(event.room)}: ${cleanList(event.members)}`);
        return;
      case 'left':
        this.print(`* left #${clean(event.room)}`);
        return;
      case 'members':
        this.print(`* in #${clean(event.room)}: ${cleanList(event.members) || '(nobody)'}`);
        return;
      case 'rooms':
        this.print(`* rooms: ${event.rooms.map((r) => `#${clean(r.room)} (${r.members})`).join(', ') || '(none)'}${andMore(event.total - event.rooms.length)}`);
        return;
      case 'error':
        // Refusals of say/dm are reported by the awaiting call; the rest are shown here.
        if (event.ref === undefined) this.print(`! ${clean(event.message)}`);
        return;
      default:
        return;
    }
  }

  /** Prints above the prompt without mangling what the user is typing. */
  private print(line: string): void {
    if (!this.interactive) {
      (line.startsWith('!') ? process.stderr : process.stdout).write(`${line}\n`);
      return;
    }
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
    process.stdout.write(`${line}\n`);
    this.rl.prompt(true);
  }
}
