// The exec contract. Control messages are frame headers on the exec service's TCP port and JSON
// text messages on the gateway's /ws/exec; output and stdin bytes are frame bodies on TCP and
// binary WebSocket messages (encodeExecData below) in the browser, so bytes are never re-encoded
// as text and a UTF-8 sequence split across two reads survives.

// ---- client → server ----
/** TCP only, first frame: nothing runs before it. The gateway authenticates itself with it. */
export interface AuthRequest { cmd: 'auth'; secret: string }
export interface RunRequest {
  cmd: 'run';
  /** the client's id for this command, unique among its running commands (1..64 chars) */
  id: string;
  /** run through `/bin/sh -c` (refused when the service has an allow-list) */
  command?: string;
  /** run directly, no shell: argv[0] is the program */
  argv?: string[];
  pty?: boolean;
  cols?: number;
  rows?: number;
  /** per-command timeout; capped by the service's own limit */
  timeoutMs?: number;
}
/** TCP: stdin bytes are the frame body. Browser: binary message with stream STDIN. `eof` closes stdin. */
export interface StdinRequest { cmd: 'stdin'; id: string; eof?: boolean }
export interface ResizeRequest { cmd: 'resize'; id: string; cols: number; rows: number }
/** Kill the whole process group (default SIGTERM, then SIGKILL after a grace period). */
export interface CancelRequest { cmd: 'cancel'; id: string; signal?: 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGHUP' }

export type ExecRequest = AuthRequest | RunRequest | StdinRequest | ResizeRequest | CancelRequest;
export const EXEC_REQUEST_COMMANDS = ['auth', 'run', 'stdin', 'resize', 'cancel'] as const;

// ---- server → client ----
export interface ReadyEvent { cmd: 'ready'; allow: string[] | null; pty: boolean }
export interface StartedEvent { cmd: 'started'; id: string; pid: number }
/** TCP: output bytes are the frame body. Browser: binary message (encodeExecData). */
export interface OutputEvent { cmd: 'stdout' | 'stderr'; id: string }
export interface ExitEvent {
  cmd: 'exit';
  id: string;
  code: number | null;
  signal: string | null;
  /** why sockbridge ended it, when it did */
  reason?: 'timeout' | 'output-limit' | 'cancelled' | 'disconnected';
}
export interface ExecErrorEvent { cmd: 'error'; code: string; message: string; id?: string }

export type ExecEvent = ReadyEvent | StartedEvent | OutputEvent | ExitEvent | ExecErrorEvent;

// ---- binary messages on /ws/exec ----
// byte 0: stream (1 stdin, 2 stdout, 3 stderr); byte 1: id length L (1..64); L bytes UTF-8 id; payload.
export const EXEC_STREAM = { stdin: 1, stdout: 2, stderr: 3 } as const;
export type ExecStreamName = keyof typeof EXEC_STREAM;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeExecData(stream: ExecStreamName, id: string, payload: Uint8Array): Uint8Array {
  const idBytes = utf8.encode(id);
  if (idBytes.length < 1 || idBytes.length > 64) throw new RangeError('exec id must be 1..64 bytes');
  const out = new Uint8Array(2 + idBytes.length + payload.length);
  out[0] = EXEC_STREAM[stream];
  out[1] = idBytes.length;
  out.set(idBytes, 2);
  out.set(payload, 2 + idBytes.length);
  return out;
}

/** Returns null for anything malformed; the caller closes the socket with SB_ERR_MESSAGE_INVALID. */
export function decodeExecData(data: Uint8Array): { stream: ExecStreamName; id: string; payload: Uint8Array } | null {
  if (data.length < 3) return null;
  const stream = (Object.keys(EXEC_STREAM) as ExecStreamName[]).find((k) => EXEC_STREAM[k] === data[0]);
  const idLength = data[1]!;
  if (!stream || idLength < 1 || idLength > 64 || data.length < 2 + idLength) return null;
  let id: string;
  try {
    id = fromUtf8.decode(data.subarray(2, 2 + idLength));
  } catch {
    return null;
  }
  return { stream, id, payload: data.subarray(2 + idLength) };
}
