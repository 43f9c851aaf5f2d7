// The TCP (L4) load balancer: listener, per-connection forwarding, PROXY protocol. See docs/lb-tcp.md.
export {
  TcpListener,
  DEFAULT_TCP_LISTENER_SETTINGS,
  validateTcpListenerOptions,
  type TcpListenerOptions,
  type TcpListenerEvents,
  type TcpDrainResult,
  type TcpServerFactory,
} from './listener.js';
export type { TcpListenerStats, TcpTargetStats } from './stats.js';
export {
  encodeProxyHeader,
  encodeProxyV1,
  encodeProxyV2,
  normalizeIp,
  PROXY_V2_SIGNATURE,
  type ProxyAddresses,
  type ProxyProtocolVersion,
} from './proxy-protocol.js';
