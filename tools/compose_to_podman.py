#!/usr/bin/env python3
"""Prints the `podman run` commands that start deploy/compose.yaml's services
with host networking (tools/containers-test.sh; Debian 12 has no
podman-compose).

Everything security-relevant is taken from the compose file as written:
image, command, environment, secrets (bind-mounted read-only at
/run/secrets/<name>), configs, named volumes, read_only, cap_drop,
security_opt and mem_limit. Only what host networking forces changes, and
only towards loopback: every service name resolves to 127.0.0.1
(--add-host), every server listens on 127.0.0.1 at its published host port
(so the two orchestrators do not collide), Redis binds 127.0.0.1, and the
per-orchestrator sidecars, which in compose share one orchestrator's network
namespace each, collapse into one (all share the host's).

  compose_to_podman.py deploy/compose.yaml --secrets DIR [--prefix P] [--env SERVICE=K=V ...]
  compose_to_podman.py --list deploy/compose.yaml     # the services it starts
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import yaml


def expand(value):
    """${NAME:-default} / ${NAME} as compose does, from this environment."""
    def replace(match):
        name, default = match.group(1), match.group(3) or ""
        return os.environ.get(name) or default
    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", replace, str(value))


def started_services(services):
    """Service names in start order, one sidecar per network-sharing image."""
    seen_sidecar_images = set()
    names = []
    for name, service in services.items():
        if str(service.get("network_mode", "")).startswith("service:"):
            if service["image"] in seen_sidecar_images:
                continue
            seen_sidecar_images.add(service["image"])
        names.append(name)
    # Redis first, then the orchestrators' sidecar, then the rest.
    return sorted(names, key=lambda n: (n != "redis", "tunnel" not in n))


def entrypoint_of(image):
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{json .Config.Entrypoint}}",
                          image], capture_output=True, text=True, check=True).stdout
    return json.loads(out) or []


def run_command(name, service, services, args, extra_env):
    argv = ["podman", "run", "-d", "--name", args.prefix + name, "--network", "host"]
    for other in services:
        argv += ["--add-host", f"{other}:127.0.0.1"]
    if service.get("read_only"):
        # Docker's meaning: nothing writable but the mounts (podman would add
        # tmpfs on /run, /tmp and /var/tmp by default).
        argv += ["--read-only", "--read-only-tmpfs=false"]
    for cap in service.get("cap_drop", []):
        argv += ["--cap-drop", cap]
    for opt in service.get("security_opt", []):
        argv += ["--security-opt", opt]
    if "mem_limit" in service:
        argv += ["--memory", str(service["mem_limit"])]
    environment = dict(service.get("environment") or {})
    environment.update(extra_env.get(name, {}))
    for key, value in environment.items():
        argv += ["-e", f"{key}={expand(value)}"]
    top_secrets = args.compose.get("secrets", {})
    for secret in service.get("secrets", []):
        source = os.path.join(args.secrets, os.path.basename(top_secrets[secret]["file"]))
        argv += ["-v", f"{source}:/run/secrets/{secret}:ro"]
    for config in service.get("configs", []):
        source = os.path.join(args.compose_dir, args.compose["configs"][config["source"]]["file"])
        argv += ["-v", f"{os.path.normpath(source)}:{config['target']}:ro"]
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        argv += ["-v", f"{args.prefix}{source}:{target}"]

    image = service["image"]
    command = [str(c) for c in service.get("command", [])]
    entrypoint = entrypoint_of(image)
    ports = service.get("ports", [])
    if "--listen" in entrypoint:
        container_port = entrypoint[entrypoint.index("--listen") + 1].rsplit(":", 1)[1]
        host_port = container_port
        for mapping in ports:
            parts = str(mapping).split(":")
            if parts[-1] == container_port:
                host_port = parts[-2]
        entrypoint[entrypoint.index("--listen") + 1] = f"127.0.0.1:{host_port}"
    elif name == "redis":
        command += ["--bind", "127.0.0.1"]
    argv += ["--entrypoint", json.dumps(entrypoint), image] + command
    return " ".join(shlex.quote(a) for a in argv)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("compose_file")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--secrets")
    parser.add_argument("--prefix", default="conveyor-")
    parser.add_argument("--env", action="append", default=[],
                        help="SERVICE=NAME=VALUE added to (or replacing in) that service")
    args = parser.parse_args()
    with open(args.compose_file, encoding="utf-8") as f:
        args.compose = yaml.safe_load(f)
    args.compose_dir = os.path.dirname(os.path.abspath(args.compose_file))
    services = args.compose["services"]
    names = started_services(services)
    if args.list:
        print("\n".join(names))
        return 0
    if not args.secrets:
        parser.error("--secrets is required")
    extra_env = {}
    for item in args.env:
        service, key, value = item.split("=", 2)
        extra_env.setdefault(service, {})[key] = value
    for name in names:
        print(run_command(name, services[name], services, args, extra_env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
