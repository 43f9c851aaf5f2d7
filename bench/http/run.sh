#!/usr/bin/env bash
# `npm run bench:http`: our HTTP load balancer against nginx and HAProxy, side by side, one core each.
# Method, rows and knobs: bench/http/README.md. The work is done by main.ts (run with tsx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec node --import tsx bench/http/main.ts "$@"
