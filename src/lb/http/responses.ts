// Responses the load balancer makes itself, with ALB's meanings:
// 400/408/413/431/501 = the client's request was refused; 502 = the target failed or answered
// malformed; 503 = no target can take the request; 504 = the target timed out.

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Error';
}

/** A complete plain-text response. `detail` must not contain secrets: clients see it. */
export function errorResponse(status: number, detail: string, keepAlive: boolean): string {
  const body = `${status} ${reasonPhrase(status)}: ${detail}\n`;
  return (
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    (keepAlive ? '' : 'Connection: close\r\n') +
    'Cache-Control: no-store\r\n' +
    `\r\n${body}`
  );
}
