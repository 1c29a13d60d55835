// What every `sockbridge serve X` shares: start, print the address it really listens on (so
// `--port 0` is usable from scripts and tests), stay up until SIGINT/SIGTERM, close cleanly.

import type { AddressInfo } from 'node:net';

export interface Startable {
  start(): Promise<AddressInfo | AddressInfo[]>;
  close(): Promise<void>;
}

export function formatAddress(scheme: 'tcp' | 'udp' | 'http', address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/** Resolves with the exit code once a signal has stopped the service. */
export async function runUntilSignal(name: string, service: Startable, describe: () => string[]): Promise<number> {
  await service.start();
  for (const line of describe()) process.stdout.write(`${line}\n`);
  process.stdout.write(`sockbridge ${name}: ready\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await service.close();
  return 0;
}
