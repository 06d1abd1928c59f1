#!/usr/bin/env bash
# Installs what the end-to-end test needs, outside the repository, and reuses it when present:
# the system packages (Chromium, ripgrep, the build deps of code-server's native modules), and
# code-server from the npm registry into a cache dir, following shared/recipes/real-editors.md.
# code-server's own post-install downloads ripgrep from the internet, which this machine cannot
# reach, so its scripts are skipped and its native modules built by hand.
#
# Usage: setup.sh; prints nothing on stdout but the cache dir's path on its last line.
# Environment: BUILDD_VSCODE_E2E_CACHE (default ~/.cache/buildd-vscode-e2e).
set -euo pipefail

# Pinned: the last code-server whose engines field asks for Node 20 (the CI machine's Node).
CODE_SERVER_VERSION=4.100.3
cache=${BUILDD_VSCODE_E2E_CACHE:-$HOME/.cache/buildd-vscode-e2e}
dir="$cache/code-server-$CODE_SERVER_VERSION"
log() { echo "e2e setup: $*" >&2; }

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
command -v make >/dev/null && command -v g++ >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
for pkg in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    # apt's output goes to a log of its own, so the test's log stays readable; nothing the
    # machine has already is upgraded, and no recommended extras come along.
    mkdir -p "$cache"
    apt_log="$cache/apt-install.log"
    log "apt-get install ${need_apt[*]} (output in $apt_log)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
        --no-upgrade --no-install-recommends "${need_apt[@]}"; } >"$apt_log" 2>&1; then
        tail -20 "$apt_log" >&2
        log "apt-get install failed: see $apt_log"
        exit 1
    fi
    log "installed: $(grep -c '^Setting up' "$apt_log") package(s)"
fi

# The marker is written last, so an interrupted install is redone rather than half reused.
if [ -f "$dir/.complete" ]; then
    log "code-server $CODE_SERVER_VERSION cached in $dir"
    echo "$dir"
    exit 0
fi

log "installing code-server $CODE_SERVER_VERSION into $dir (a few minutes on two cores)"
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
echo '{"name":"buildd-vscode-e2e-cache","private":true}' >package.json
npm install --ignore-scripts --no-save "code-server@$CODE_SERVER_VERSION" >&2
(
    cd node_modules/code-server/lib/vscode
    npm install --omit=dev --ignore-scripts >&2
    mkdir -p node_modules/@vscode/ripgrep/bin
    cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm rebuild >&2
    ln -sfn node_modules node_modules.asar
    cd extensions
    npm install --omit=dev >&2
)
npm rebuild argon2 >&2
touch .complete
log "code-server installed"
echo "$dir"
