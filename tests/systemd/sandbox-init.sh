#!/bin/sh
# PID 1 of a throwaway system: build a root file system on a tmpfs at $1, pivot into it
# and exec systemd. Run only through tests/systemd/sandbox.py, which starts this inside
# `unshare --pid --fork --mount --cgroup --uts --ipc --net --propagation private`.
#
# Never boot systemd on the machine's own root: at boot it runs
# `systemd-tmpfiles --create --remove --boot`, which would empty the host's /tmp.
set -eu

root=$1
mount -t tmpfs -o mode=0755 watchd-sandbox "$root"
cd "$root"
mkdir -p .sandbox/usr-upper .sandbox/usr-work \
    usr etc proc sys dev run tmp var/lib var/tmp var/log opt srv root home

# The host's /usr under a writable overlay: packages install into /usr/bin and /lib here
# while the host's /usr stays untouched.
mount -t overlay watchd-sandbox-usr \
    -o lowerdir=/usr,upperdir=.sandbox/usr-upper,workdir=.sandbox/usr-work usr
ln -s usr/bin bin
ln -s usr/sbin sbin
ln -s usr/lib lib
if [ -d /usr/lib64 ]; then ln -s usr/lib64 lib64; fi

cp -a /etc/. etc/
: > etc/machine-id               # systemd makes up a fresh one
# dpkg's database, so that `dpkg -i` sees the host's packages (python3) as installed.
cp -a /var/lib/dpkg var/lib/

mount -t proc proc proc
mount --rbind /sys sys
# A cgroup2 file system of our own cgroup namespace: systemd manages the subtree the
# sandbox was started in, never the host's cgroups.
umount -R sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 sys/fs/cgroup
mount --rbind /dev dev

mkdir .sandbox/oldroot
pivot_root . .sandbox/oldroot
umount -l /.sandbox/oldroot
rmdir /.sandbox/oldroot
# As on a real boot, mounts made later propagate into the services' own mount namespaces
# (systemd leaves this to the container manager when it runs in a container).
mount --make-rshared /
exec env -i container=watchd-test /lib/systemd/systemd --system --unit=multi-user.target
