# Sandbox template for mk0r sessions: one HTTP <-> ACP bridge (vm_bridge) driving
# claude-agent-acp over stdio. Build context: the repository root (see README.md).
#
# Debian bookworm ships Python 3.11; the node image brings Node 20.
FROM node:20-bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # Claude Code refuses to run as root without it; E2B may run commands as root.
    IS_SANDBOX=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates git ripgrep procps \
    && rm -rf /var/lib/apt/lists/*

# The agent, pinned (same version as package.json at the repository root).
RUN npm install -g @agentclientprotocol/claude-agent-acp@0.100.0 \
    && npm cache clean --force

# The bridge: its own virtualenv with the pinned requirements, then the package itself.
COPY requirements/vm_bridge.txt /opt/mk0r/requirements/vm_bridge.txt
RUN python3 -m venv /opt/mk0r/venv \
    && /opt/mk0r/venv/bin/pip install --no-cache-dir -r /opt/mk0r/requirements/vm_bridge.txt
COPY vm_bridge /opt/mk0r/vm_bridge
COPY docker/e2b/start-bridge.sh /opt/mk0r/start-bridge.sh

# The app's working directory (SANDBOX_CWD in sessions_app/sandboxes/e2b.py); writable
# whether E2B runs the bridge as `user` or as root.
RUN chmod 755 /opt/mk0r/start-bridge.sh \
    && mkdir -p /home/user/app \
    && chmod -R a+rwX /home/user

WORKDIR /home/user
