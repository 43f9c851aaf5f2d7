// The floor for any Node.js proxy: a bare TCP pipe (no parsing, no pooling) from a port to one server.
// Usage: node node-pipe.mjs LISTEN_PORT TARGET_HOST TARGET_PORT
import { connect, createServer } from 'node:net';

const [listenPort, host, port] = process.argv.slice(2);
createServer((client) => {
  const server = connect({ host, port: Number(port) });
  client.setNoDelay(true);
  server.setNoDelay(true);
  client.pipe(server).on('error', () => client.destroy());
  server.pipe(client).on('error', () => server.destroy());
  client.on('error', () => server.destroy());
  server.on('error', () => client.destroy());
}).listen(Number(listenPort), '127.0.0.1');
