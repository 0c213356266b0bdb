#!/usr/bin/python3
"""seccomp_exec.py UNIT -- COMMAND...

Runs COMMAND under the seccomp part of a systemd unit's sandbox, built the
way systemd builds it, for machines whose PID 1 is not systemd (the package
test runs mfad under it; see unit-sandbox):

  SystemCallFilter=        groups expanded by this machine's systemd-analyze;
                           an allow list, then ~ lines remove from it
  SystemCallErrorNumber=   the errno of a refused call (default: kill)
  RestrictAddressFamilies= socket() of any other family gets EAFNOSUPPORT
  MemoryDenyWriteExecute=  no writable+executable mmap, no PROT_EXEC mprotect

The caller must already have set no_new_privs (setpriv --no-new-privs).
"""

import errno
import os
import socket
import subprocess
import sys

import seccomp

PROT_WRITE, PROT_EXEC = 0x2, 0x4
AF_MAX = 46


def directives(path):
    """Every Key=Value of the [Service] section, values in order."""
    found, section = {}, None
    with open(path, encoding="utf-8") as unit:
        for line in unit:
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                found.setdefault(key, []).append(value)
    return found


def expand(names, seen=None):
    """System call names for a list of names and @groups."""
    seen = set() if seen is None else seen
    calls = set()
    for name in names:
        if not name.startswith("@"):
            calls.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        out = subprocess.run(
            ["systemd-analyze", "syscall-filter", name],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()
        members = [l.strip() for l in out[1:] if l.strip() and not l.strip().startswith("#")]
        calls |= expand(members, seen)
    return calls


def allowed_calls(values):
    if not values or values[0].startswith("~"):
        sys.exit("seccomp_exec.py: expected a SystemCallFilter= allow list first")
    calls = set()
    for value in values:
        if value.startswith("~"):
            calls -= expand(value[1:].split())
        else:
            calls |= expand(value.split())
    return calls


def add(filt, action, name, *args):
    try:
        filt.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass  # a call this architecture or libseccomp does not know


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: seccomp_exec.py UNIT -- COMMAND...")
    unit, command = directives(sys.argv[1]), sys.argv[3:]
    calls = allowed_calls(unit.get("SystemCallFilter", []))
    number = unit.get("SystemCallErrorNumber", [None])[-1]
    default = seccomp.ERRNO(getattr(errno, number)) if number else seccomp.KILL_PROCESS
    filt = seccomp.SyscallFilter(default)

    special = set()
    families = unit.get("RestrictAddressFamilies")
    if families and "socket" in calls:
        special.add("socket")
        allowed = {getattr(socket, f) for f in " ".join(families).split()}
        for family in range(AF_MAX):
            action = seccomp.ALLOW if family in allowed else seccomp.ERRNO(errno.EAFNOSUPPORT)
            add(filt, action, "socket", seccomp.Arg(0, seccomp.EQ, family))
    if unit.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        special |= {"mmap", "mprotect", "pkey_mprotect"}
        for bit in (PROT_WRITE, PROT_EXEC):
            add(filt, seccomp.ALLOW, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, bit, 0))
        for name in ("mprotect", "pkey_mprotect"):
            add(filt, seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
    for name in sorted(calls - special):
        add(filt, seccomp.ALLOW, name)
    filt.load()
    # unit-sandbox hands this script and the unit over as /proc/self/fd/N
    # (their paths may be hidden in the sandbox): the daemon inherits neither.
    for path in (sys.argv[0], sys.argv[1]):
        if path.startswith("/proc/self/fd/"):
            os.close(int(path.rsplit("/", 1)[1]))
    os.execvp(command[0], command)


main()
