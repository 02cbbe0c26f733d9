import type { AddressInfo } from 'node:net';
import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server (the local PostgreSQL), which the test switches
 * down and up: down, every open connection is reset and every new one is reset on arrival, as a
 * database that went away would look to its clients; up, connections are passed through. A
 * destination configured at the proxy's port can thus fail and recover while its config, bundled
 * into the deployed function, stays the same.
 */
export interface OutageProxy {
  readonly port: number;
  readonly up: boolean;
  /** Connections refused (reset) while down. */
  readonly refused: number;
  down(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startOutageProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<OutageProxy> {
  let up = true;
  let refused = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    if (!up) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ port: targetPort, host: targetHost });
    open.add(client);
    open.add(upstream);
    const close = () => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get up() {
      return up;
    },
    get refused() {
      return refused;
    },
    down() {
      up = false;
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    restore() {
      up = true;
    },
    async stop() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
