#!/usr/bin/env python3
"""deploy/compose.yaml against the Dockerfile and each binary's --help.

  compose_test.py --source-dir <repo> --bin-dir <build>/bin

The hardening rules (loopback ports, read-only roots, no capabilities,
secrets from files, TLS everywhere) are in compose_security_test.py.
"""

import os
import re
import unittest

import deploy_checks as checks
from deploy_checks import STAGES, BinaryHelp, accepts, load_yaml_documents, path
from dockerfile_model import (THIRD_PARTY_IMAGES, Dockerfile, conveyor_images, listen_port,
                              runtime_images)

DOCKERFILE = None
IMAGES = None


def setUpModule():
    global DOCKERFILE, IMAGES
    DOCKERFILE = Dockerfile(path("deploy", "Dockerfile"))
    IMAGES = conveyor_images(DOCKERFILE)


def parse_stunnel_section(text, section):
    """`key = value` lines of one [section] of a stunnel config."""
    values, current = {}, None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif "=" in line and current == section:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class ComposeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        documents = load_yaml_documents(path("deploy", "compose.yaml"))
        assert len(documents) == 1
        cls.compose = documents[0]
        cls.services = cls.compose["services"]

    def service_binary(self, name):
        build = self.services[name].get("build")
        if not build:
            return None, None
        self.assertEqual("deploy/Dockerfile", build["dockerfile"])
        self.assertTrue(os.path.isdir(os.path.normpath(
            os.path.join(path("deploy"), build["context"]))))
        self.assertEqual(os.path.normpath(os.path.join(path("deploy"), build["context"])),
                         os.path.normpath(checks.SOURCE_DIR), f"{name}: context is the repo root")
        target = build["target"]
        if target in THIRD_PARTY_IMAGES:
            self.assertIn(target, runtime_images(DOCKERFILE), f"{name}: no target {target}")
            return target, None
        self.assertIn(target, IMAGES, f"{name}: no Dockerfile target {target}")
        return target, IMAGES[target]

    def service_port(self, name):
        target, _ = self.service_binary(name)
        return listen_port(DOCKERFILE.entrypoint(target))

    def test_every_conveyor_image_is_present(self):
        targets = {self.service_binary(n)[0] for n in self.services}
        self.assertIn("redis", targets)
        self.assertIn("redis-tunnel", targets)
        for stage in STAGES + ["orchestrator"]:
            self.assertIn(stage, targets)
        orchestrators = [n for n in self.services if self.service_binary(n)[0] == "orchestrator"]
        self.assertGreaterEqual(len(orchestrators), 2, "two orchestrator replicas")

    def test_redis_is_append_only_with_a_volume_and_a_healthcheck(self):
        redis = self.services["redis"]
        command = redis["command"]
        self.assertIn("--appendonly", command)
        self.assertEqual("yes", command[command.index("--appendonly") + 1])
        volume = redis["volumes"][0].split(":")
        self.assertEqual("/data", volume[1])
        self.assertIn(volume[0], self.compose["volumes"])
        self.assertIn("redis-cli", redis["healthcheck"]["test"])
        self.assertIn("ping", redis["healthcheck"]["test"])

    def test_environment_names_exist_in_help(self):
        for name, service in self.services.items():
            _, binary = self.service_binary(name)
            if binary is None:
                continue
            help_ = BinaryHelp.of(binary)
            for key in service.get("environment", {}):
                self.assertTrue(accepts(help_, key), f"compose {name}: {key} unknown to {binary}")
            for field in ("command", "entrypoint"):
                for arg in service.get(field) or []:
                    if str(arg).startswith("--"):
                        self.assertTrue(accepts(help_, arg.split("=")[0]),
                                        f"compose {name}: {arg}")

    def test_every_service_has_a_healthcheck_on_its_port(self):
        for name, service in self.services.items():
            self.assertIn("healthcheck", service, f"compose {name}: no healthcheck")
            test = service["healthcheck"]["test"]
            self.assertEqual("CMD", test[0], f"{name}: exec form, no shell")
            target, binary = self.service_binary(name)
            if binary is None:
                continue
            port = self.service_port(name)
            if test[1] == "conveyor":
                # The CLI shipped in the image: flags and subcommand must exist.
                self.assertEqual("orchestrator", target)
                cli = BinaryHelp.of("conveyor")
                args = test[2:]
                subcommand = [a for i, a in enumerate(args) if not a.startswith("--")
                              and (i == 0 or not args[i - 1].startswith("--"))]
                self.assertEqual(1, len(subcommand), test)
                self.assertIn(subcommand[0], cli.subcommands, f"conveyor {subcommand[0]}")
                for arg in args:
                    if arg.startswith("--"):
                        self.assertIn(arg, cli.flags | BinaryHelp.of("conveyor", subcommand[0])
                                      .flags, f"conveyor {arg}")
                self.assertIn(f"127.0.0.1:{port}", args)
            else:
                joined = " ".join(test[1:])
                match = re.search(r"/dev/tcp/127\.0\.0\.1/(\d+)", joined)
                self.assertIsNotNone(match, f"{name}: unrecognised health check {test}")
                self.assertEqual(port, int(match.group(1)), f"{name}: health check port")

    def test_orchestrator_targets_name_services_and_their_ports(self):
        for name, service in self.services.items():
            if self.service_binary(name)[0] != "orchestrator":
                continue
            env = service["environment"]
            for stage in STAGES:
                target = env[f"CONVEYOR_{stage.upper()}_TARGET"]
                match = re.match(r"^dns:///([\w-]+):(\d+)$", target)
                self.assertIsNotNone(match, target)
                self.assertIn(match.group(1), self.services)
                self.assertEqual(stage, self.service_binary(match.group(1))[0])
                self.assertEqual(self.service_port(match.group(1)), int(match.group(2)), target)
            # Redis only through this replica's stunnel sidecar: plaintext to
            # loopback, where a tunnel sharing its network namespace accepts
            # and carries it to the redis service's TLS port.
            redis_url = re.match(r"^redis://127\.0\.0\.1:(\d+)(?:/\d+)?$",
                                 env["CONVEYOR_REDIS_URL"])
            self.assertIsNotNone(redis_url, f"{name}: {env['CONVEYOR_REDIS_URL']}")
            tunnels = [t for t, s in self.services.items()
                       if s.get("network_mode") == f"service:{name}"]
            self.assertEqual(1, len(tunnels), f"{name}: one redis-tunnel sidecar")
            self.assertEqual("redis-tunnel", self.service_binary(tunnels[0])[0])
            conf = self.tunnel_config(tunnels[0])
            self.assertEqual(f"127.0.0.1:{redis_url.group(1)}", conf["accept"], tunnels[0])
            host, port = conf["connect"].rsplit(":", 1)
            self.assertIn(host, self.services)
            command = self.services[host]["command"]
            self.assertEqual(port, command[command.index("--tls-port") + 1])
            self.assertEqual(host, conf["checkHost"], "stunnel checks Redis's name")
            self.assertEqual("yes", conf["verifyChain"])
            self.assertEqual("service_healthy",
                             service["depends_on"]["redis"]["condition"])

    def test_orchestrators_cannot_overload_a_stage(self):
        # Capacity (docs/deploy.md): what every orchestrator may keep in flight
        # to a stage fits in that stage's threads + queue, else the surplus is
        # refused with RESOURCE_EXHAUSTED and spends retry attempts.
        orchestrators = [n for n in self.services if self.service_binary(n)[0] == "orchestrator"]
        in_flight = 0
        for name in orchestrators:
            env = self.services[name].get("environment", {})
            in_flight += BinaryHelp.of("conveyor-orchestrator").setting(
                env, "--max-in-flight", "CONVEYOR_MAX_IN_FLIGHT")
        for name in self.services:
            target, binary = self.service_binary(name)
            if target not in STAGES:
                continue
            help_ = BinaryHelp.of(binary)
            env = self.services[name].get("environment", {})
            capacity = (help_.setting(env, "--worker-threads", "CONVEYOR_WORKER_THREADS") +
                        help_.setting(env, "--max-queued", "CONVEYOR_MAX_QUEUED"))
            self.assertLessEqual(in_flight, capacity,
                                 f"compose {name}: orchestrators may send {in_flight} calls, "
                                 f"one replica takes {capacity}")

    def tunnel_config(self, service_name):
        """The [redis] section of the stunnel config a tunnel service mounts."""
        service = self.services[service_name]
        mounted = {c["target"]: c["source"] for c in service["configs"]}
        self.assertEqual(["/etc/conveyor/stunnel/redis-client.conf"], list(mounted))
        source = self.compose["configs"][mounted["/etc/conveyor/stunnel/redis-client.conf"]]
        with open(os.path.join(path("deploy"), source["file"]), encoding="utf-8") as f:
            return parse_stunnel_section(f.read(), "redis")

    def test_published_ports_are_served(self):
        for name, service in self.services.items():
            for mapping in service.get("ports", []):
                # Bound to loopback only: nothing is published beyond this host.
                self.assertTrue(str(mapping).startswith("127.0.0.1:"), f"{name}: {mapping}")
                container = int(str(mapping).split(":")[-1].split("/")[0])
                # The gRPC port, or the dashboard's (CONVEYOR_HTTP_LISTEN).
                http = str(service.get("environment", {}).get("CONVEYOR_HTTP_LISTEN", ""))
                served = {self.service_port(name)}
                if http:
                    served.add(int(http.rsplit(":", 1)[1]))
                self.assertIn(container, served, f"{name}: {mapping}")

    def test_named_volumes_are_declared(self):
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if not source.startswith((".", "/")):
                    self.assertIn(source, self.compose.get("volumes", {}), f"{name}: {volume}")



if __name__ == "__main__":
    checks.main()
