/**
 * Config files for the processes the benchmark starts. All of them listen on 127.0.0.1 only and keep
 * every file (pid, logs, temp) inside the run's temp folder, so no system service is touched.
 */

export const LISTEN = { host: '127.0.0.1', port: 8080 };
export const BACKEND_PORTS = [9001, 9002, 9003, 9004];

/** nginx refuses to start without these writable paths; point them all into the temp folder. */
function nginxPaths(dir: string): string[] {
  return [
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'worker_processes 1;',
    'events { worker_connections 4096; }',
  ];
}

function nginxTempPaths(dir: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `${k}_temp_path ${dir}/${k};`)
    .join(' ');
}

export function backendLog(dir: string, port: number): string {
  return `${dir}/backend-${port}.log`;
}

/**
 * The four targets: one nginx worker, one server block per port, a tiny 200 with X-Backend.
 * Each request writes one buffered log line holding its connection serial, which gives the
 * per-backend request count (spread) and the number of distinct connections (keep-alive).
 */
export function backendNginxConf(dir: string): string {
  const servers = BACKEND_PORTS.map(
    (port) => `
  server {
    listen 127.0.0.1:${port} backlog=4096;
    access_log ${backendLog(dir, port)} conn_only buffer=256k flush=5s;
    location / {
      add_header X-Backend ${port} always;
      return 200 "ok\\n";
    }
  }`,
  ).join('');
  return `${nginxPaths(dir).join('\n')}
http {
  default_type text/plain;
  ${nginxTempPaths(dir)}
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  log_format conn_only '$connection';
${servers}
}
`;
}

/** nginx as the load balancer under test: round-robin, HTTP/1.1 keep-alive pool to the targets. */
export function lbNginxConf(dir: string): string {
  const upstreams = BACKEND_PORTS.map((port) => `    server 127.0.0.1:${port};`).join('\n');
  return `${nginxPaths(dir).join('\n')}
http {
  access_log off;
  ${nginxTempPaths(dir)}
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  upstream targets {
${upstreams}
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen ${LISTEN.host}:${LISTEN.port} backlog=4096;
    location / {
      proxy_pass http://targets;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** HAProxy as the load balancer under test: one thread, HTTP mode, round-robin, connection reuse. */
export function lbHaproxyConf(): string {
  const servers = BACKEND_PORTS.map((port) => `  server t${port} 127.0.0.1:${port}`).join('\n');
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend lb
  bind ${LISTEN.host}:${LISTEN.port}
  default_backend targets
backend targets
  balance roundrobin
  http-reuse always
${servers}
`;
}
