#!/usr/bin/env bash
# Brings Wrenn up on this machine. Until the control plane lands this serves the host
# agent alone: it prints its address and token, and Ctrl-C stops it and every sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_token() {
  local dir token_file
  dir=$(wrenn_dir)
  token_file="$dir/agent-token"
  mkdir -p "$dir"
  if [ ! -s "$token_file" ]; then
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file"
    chmod 600 "$token_file"
  fi
  cat "$token_file"
}

main() {
  local token port
  token=$(ensure_token)
  port=${WRENN_AGENT_PORT:-50051}
  log_step "starting the host agent on 127.0.0.1:$port"
  cat >"$(wrenn_dir)/credentials.env" <<ENV
WRENN_AGENT_URL=http://127.0.0.1:$port
WRENN_AGENT_TOKEN=$token
ENV
  log_info "credentials written to $(wrenn_dir)/credentials.env"
  log_info "Ctrl-C stops the agent and destroys its sandboxes"
  WRENN_AGENT_TOKEN=$token WRENN_AGENT_PORT=$port WRENN_AGENT_DESTROY_ON_EXIT=1 \
    exec node_modules/.bin/tsx packages/host-agent/src/main.ts serve
}

main "$@"
