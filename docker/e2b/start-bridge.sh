#!/bin/sh
# Starts the bridge inside an E2B sandbox. The backend runs this file with
#   sandbox.commands.run("/opt/mk0r/start-bridge.sh", background=True, timeout=0, envs={...})
# and passes BRIDGE_TOKEN, BRIDGE_PORT, MK0R_SANDBOX_ID and MK0R_USAGE_URL.
# ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL / CLAUDE_CODE_OAUTH_TOKEN, when set, reach the agent.
set -eu

: "${BRIDGE_TOKEN:?BRIDGE_TOKEN is required}"
PORT="${BRIDGE_PORT:-3002}"
MK0R_HOME="${MK0R_HOME:-/opt/mk0r}"
PYTHON="${MK0R_PYTHON:-$MK0R_HOME/venv/bin/python}"
APP_DIR="${MK0R_APP_DIR:-/home/user/app}"
STATE_DIR="${MK0R_STATE_DIR:-$HOME/.mk0r}"

export IS_SANDBOX=1
export CLAUDE_CONFIG_DIR="${CLAUDE_CONFIG_DIR:-$HOME/.claude}"
mkdir -p "$APP_DIR" "$STATE_DIR/spool" "$CLAUDE_CONFIG_DIR"

set -- --host 0.0.0.0 --port "$PORT" \
    --agent-cmd "${MK0R_AGENT_CMD:-claude-agent-acp}" \
    --token-env BRIDGE_TOKEN \
    --cwd-root "$APP_DIR" \
    --spool-dir "$STATE_DIR/spool" \
    --permission-policy "${MK0R_PERMISSION_POLICY:-allow}"
if [ -n "${MK0R_USAGE_URL:-}" ]; then
    set -- "$@" --usage-url "$MK0R_USAGE_URL" --sandbox-id "${MK0R_SANDBOX_ID:?MK0R_SANDBOX_ID is required with MK0R_USAGE_URL}"
fi

cd "$MK0R_HOME"
# exec: the bridge gets SIGTERM directly and shuts down gracefully (cancels turns, flushes the spool).
exec "$PYTHON" -m vm_bridge "$@" >>"$STATE_DIR/bridge.log" 2>&1
