#!/bin/busybox sh
# PID 1 of the `npm run test:v4l2` guest (scripts/test-v4l2.mjs builds the initramfs around it).
# Loads the kernel's own modules (vivid, videobuf2, virtio, 9p) in dependency order, mounts the
# checkout read-only and the output share read-write over virtio-9p, runs the guest test under a
# hard timeout and powers off. Settings arrive as kernel command-line words that the kernel hands to
# init as environment variables (LVUNET_*).
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp

say() { echo "lvunet-guest: $*"; }
finish() {
  echo "$1" > /out/exit-code 2>/dev/null
  sync
  umount /out 2>/dev/null
  say "exit $1"
  poweroff -f
}

while read -r mod params; do
  # shellcheck disable=SC2086 # params are module parameters, one word each
  insmod "/modules/$mod" $params || { say "insmod $mod failed"; poweroff -f; }
done < /modules/order
say "modules loaded: $(cut -d' ' -f1 /modules/order | tr '\n' ' ')"

mkdir -p /out "$LVUNET_REPO"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /out || { say "cannot mount the output share"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose repo "$LVUNET_REPO" || { say "cannot mount the checkout"; finish 70; }
if [ -n "$LVUNET_MODULES_DIR" ]; then
  mkdir -p "$LVUNET_MODULES_DIR"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose nodemodules "$LVUNET_MODULES_DIR" || { say "cannot mount node_modules"; finish 70; }
fi

cd "$LVUNET_REPO" || finish 70
say "kernel up $(cut -d' ' -f1 /proc/uptime) s; running the guest test (timeout ${LVUNET_TIMEOUT}s)"
timeout -s KILL "$LVUNET_TIMEOUT" node --expose-gc test/v4l2/guest.mjs /out
finish $?
