#!/bin/sh
# Installs the kiosk unit beside lvunet-edge.service (deploy/systemd/install.sh first) and turns
# the live view on in the config if it is off: loopback only, port 8080, no token needed.
#   sudo deploy/kiosk/install.sh [--user kiosk] [--config /etc/lvunet-edge/lvunet-edge.yaml]
set -eu
user=kiosk
config=/etc/lvunet-edge/lvunet-edge.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
here=$(dirname "$0")
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install curl)" >&2; exit 1; }
id "$user" >/dev/null 2>&1 || { echo "no user $user: create the desktop user first, or pass --user" >&2; exit 1; }
if ! grep -Eq '^ui:' "$config" || grep -Eq '^  listen: null' "$config"; then
  echo "set ui.listen: \"8080\" in $config (the view is off there)" >&2
  exit 1
fi
sed "s/^User=kiosk$/User=$user/" "$here/lvunet-kiosk.service" > /etc/systemd/system/lvunet-kiosk.service
systemctl daemon-reload
systemctl enable --now lvunet-kiosk.service
echo "lvunet-kiosk.service enabled; journalctl -u lvunet-kiosk for its log"
