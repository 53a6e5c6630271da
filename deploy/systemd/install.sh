#!/usr/bin/env bash
# Installs lvunet-edge as a systemd service on a board.
#   sudo deploy/systemd/install.sh [--prefix /opt/lvunet-edge] [--config FILE]
# Copies the built project (dist/, node_modules/, native build, models/) to PREFIX, creates the
# lvunet-edge system user, installs the unit and a config (kept if one exists), and starts it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=/opt/lvunet-edge
config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo)" >&2; exit 1; }
[ -f "$root/dist/src/cli/main.js" ] || { echo "install.sh: build first: npm ci && npm run build" >&2; exit 1; }
command -v node >/dev/null || { echo "install.sh: node is not installed (Node 20+ needed)" >&2; exit 1; }

id lvunet-edge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/lvunet-edge --shell /usr/sbin/nologin --groups video lvunet-edge
mkdir -p "$prefix"
for part in dist node_modules build prebuilds models package.json README.md; do
  [ -e "$root/$part" ] && cp -a "$root/$part" "$prefix/"
done
mkdir -p "$prefix/deploy" && cp -a "$root/deploy/profiles" "$prefix/deploy/"
install -d -m 0750 -o root -g lvunet-edge /etc/lvunet-edge
if [ ! -f /etc/lvunet-edge/lvunet-edge.yaml ]; then
  src=${config:-$root/deploy/config/lvunet-edge.yaml}
  install -m 0640 -o root -g lvunet-edge "$src" /etc/lvunet-edge/lvunet-edge.yaml
fi
sed "s#/opt/lvunet-edge#$prefix#g" "$here/lvunet-edge.service" > /etc/systemd/system/lvunet-edge.service
systemctl daemon-reload
systemctl enable --now lvunet-edge.service
systemctl --no-pager status lvunet-edge.service || true
