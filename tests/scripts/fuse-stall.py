#!/usr/bin/env python3
"""fuse-stall.py PID DIR: a trap a container can plant: a FUSE filesystem that never
answers, mounted at DIR in the mount namespace of process PID (a container's init).
Every lookup below DIR then waits for a reply that never comes (the kernel does not even
get an answer to FUSE_INIT). Prints "ready" once mounted, then sleeps until killed;
killing it aborts the connection and releases every waiter (ENOTCONN).
The helper opens /dev/fuse on the host and enters the container's mount namespace, as a
container with `features: fuse=1` could do for itself."""
import ctypes, os, sys, time

pid, target = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fuse = os.open("/dev/fuse", os.O_RDWR)
ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
CLONE_NEWNS = 0x00020000
if libc.setns(ns, CLONE_NEWNS) != 0:
    sys.exit(f"setns: {os.strerror(ctypes.get_errno())}")
os.chdir("/")
os.makedirs(target, exist_ok=True)
opts = f"fd={fuse},rootmode=40000,user_id=0,group_id=0".encode()
if libc.mount(b"phx-stall", target.encode(), b"fuse", 0, opts) != 0:
    sys.exit(f"mount: {os.strerror(ctypes.get_errno())}")
print("ready", flush=True)
while True:
    time.sleep(3600)
