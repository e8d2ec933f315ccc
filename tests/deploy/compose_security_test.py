#!/usr/bin/env python3
"""deploy/compose.yaml's hardening: what every container may do, where its
secrets come from, and that every hop is TLS with the right names.

  compose_security_test.py --source-dir <repo> --bin-dir <build>/bin

The certificates are the ones tools/make-deploy-secrets.sh makes, made here
into a temporary directory, so the names compose dials are checked against
what the script really issues.
"""

import os
import re
import unittest

import deploy_checks as checks
from deploy_checks import (STAGES, WithOperatorSecrets, certificate_names, load_yaml_documents,
                           path)

SECRETS_MOUNT = "/run/secrets/"



class ComposeSecurityTest(WithOperatorSecrets, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.compose = load_yaml_documents(path("deploy", "compose.yaml"))[0]
        cls.services = cls.compose["services"]

    def target(self, name):
        return (self.services[name].get("build") or {}).get("target")

    def env(self, name):
        return {k: str(v) for k, v in (self.services[name].get("environment") or {}).items()}

    def secret_file(self, name, mounted_path):
        """The file make-deploy-secrets.sh made for /run/secrets/<x> in service `name`."""
        self.assertTrue(mounted_path.startswith(SECRETS_MOUNT), f"{name}: {mounted_path}")
        secret = mounted_path[len(SECRETS_MOUNT):]
        self.assertIn(secret, self.services[name].get("secrets", []),
                      f"{name} uses {mounted_path} but does not mount secret {secret}")
        return os.path.join(self.secrets_dir,
                            os.path.basename(self.compose["secrets"][secret]["file"]))

    def test_every_container_is_read_only_unprivileged_and_memory_limited(self):
        for name, service in self.services.items():
            self.assertIs(True, service.get("read_only"), f"{name}: read_only")
            self.assertEqual(["ALL"], service.get("cap_drop"), f"{name}: cap_drop")
            self.assertIn("no-new-privileges:true", service.get("security_opt", []), name)
            self.assertRegex(str(service.get("mem_limit", "")), r"^\d+[kmg]$", f"{name}: mem_limit")
            self.assertNotIn("privileged", service, name)
            self.assertNotEqual("host", service.get("network_mode"), name)

    def test_only_orchestrators_publish_ports_and_only_on_loopback(self):
        for name, service in self.services.items():
            for mapping in service.get("ports", []):
                self.assertEqual("orchestrator", self.target(name), f"{name} publishes {mapping}")
                self.assertTrue(str(mapping).startswith("127.0.0.1:"), f"{name}: {mapping}")
            for mapping in service.get("expose", []):
                self.fail(f"{name}: expose {mapping}")

    def test_secrets_are_operator_files_the_script_makes_and_git_ignores(self):
        declared = self.compose.get("secrets", {})
        self.assertTrue(declared)
        made = set(os.listdir(self.secrets_dir))
        for secret, spec in declared.items():
            self.assertEqual(["file"], list(spec), f"secret {secret}: only from a file")
            self.assertTrue(spec["file"].startswith("./secrets/"), spec["file"])
            self.assertIn(os.path.basename(spec["file"]), made,
                          f"tools/make-deploy-secrets.sh does not make {spec['file']}")
        self.assertNotIn("ca.key", {os.path.basename(s["file"]) for s in declared.values()},
                         "the CA key is never mounted")
        for name, service in self.services.items():
            for secret in service.get("secrets", []):
                self.assertIn(secret, declared, f"{name}: undeclared secret {secret}")
        with open(path(".gitignore"), encoding="utf-8") as f:
            ignored = f.read().split()
        self.assertIn("/deploy/secrets/", ignored)

    def test_no_secret_value_in_environment_or_command(self):
        for name, service in self.services.items():
            values = list(self.env(name).values()) + [str(a) for a in service.get("command", [])]
            for value in values:
                self.assertNotRegex(value, r"whsec_[A-Za-z0-9+/=]{8,}", name)
                self.assertNotRegex(value, r"redis://[^/]*@", f"{name}: credentials in a URL")
            self.assertNotIn("--requirepass", values, name)
            for key in self.env(name):
                if re.search(r"SECRET|PASSWORD|TOKEN", key) and not key.endswith("_FILE"):
                    self.assertTrue(self.env(name)[key] == "" or
                                    re.fullmatch(r"\$\{\w+:-\}", self.env(name)[key]),
                                    f"{name}: {key} has a committed value")

    def test_every_conveyor_server_serves_tls_with_its_own_mounted_certificate(self):
        for name in self.services:
            target = self.target(name)
            if target not in STAGES + ["orchestrator"]:
                continue
            env = self.env(name)
            self.assertNotIn("CONVEYOR_INSECURE", env, name)
            self.assertNotIn("CONVEYOR_ALLOW_ANONYMOUS", env, name)
            cert = self.secret_file(name, env["CONVEYOR_TLS_CERT"])
            self.secret_file(name, env["CONVEYOR_TLS_KEY"])
            self.secret_file(name, env["CONVEYOR_TLS_CLIENT_CA"])
            self.assertIn(target, certificate_names(cert), f"{name}: certificate of {target}")
            if target in STAGES:
                # Workers take calls only from the orchestrator's certificate.
                self.assertEqual("orchestrator", env["CONVEYOR_TLS_CLIENT_NAME"], name)

    def test_orchestrators_authenticate_and_dial_workers_by_certified_names(self):
        orchestrators = [n for n in self.services if self.target(n) == "orchestrator"]
        self.assertGreaterEqual(len(orchestrators), 2)
        for name in orchestrators:
            env = self.env(name)
            self.secret_file(name, env["CONVEYOR_TOKENS_FILE"])
            self.secret_file(name, env["CONVEYOR_WORKER_TLS_CA"])
            client_cert = self.secret_file(name, env["CONVEYOR_WORKER_TLS_CERT"])
            self.secret_file(name, env["CONVEYOR_WORKER_TLS_KEY"])
            self.assertIn("orchestrator", certificate_names(client_cert))
            for stage in STAGES:
                host = re.match(r"^dns:///([\w-]+):\d+$",
                                env[f"CONVEYOR_{stage.upper()}_TARGET"]).group(1)
                worker_cert = self.secret_file(host, self.env(host)["CONVEYOR_TLS_CERT"])
                self.assertIn(host, certificate_names(worker_cert),
                              f"{name} dials {host}, which its certificate does not name")

    def test_redis_is_tls_only_with_client_certificates_and_an_acl_file(self):
        command = [str(a) for a in self.services["redis"]["command"]]

        def value(flag):
            self.assertIn(flag, command)
            return command[command.index(flag) + 1]

        self.assertEqual("0", value("--port"), "no plaintext port")
        self.assertEqual("yes", value("--tls-auth-clients"))
        redis_cert = self.secret_file("redis", value("--tls-cert-file"))
        self.secret_file("redis", value("--tls-key-file"))
        self.secret_file("redis", value("--tls-ca-cert-file"))
        acl = self.secret_file("redis", value("--aclfile"))
        with open(acl, encoding="utf-8") as f:
            users = {line.split()[1]: line for line in f if line.startswith("user ")}
        self.assertRegex(users["conveyor"], r" #[0-9a-f]{64} ", "only the password's SHA-256")
        self.assertRegex(users["default"], r"-@all \+ping", "the default user may only PING")
        self.assertIn("redis", certificate_names(redis_cert))
        for name in self.services:
            if self.target(name) == "orchestrator":
                env = self.env(name)
                self.assertEqual("conveyor", env["CONVEYOR_REDIS_USER"])
                password = self.secret_file(name, env["CONVEYOR_REDIS_PASSWORD_FILE"])
                self.assertEqual(os.path.basename(password), "redis-password")

    def test_redis_tunnels_show_the_orchestrator_certificate(self):
        tunnels = [n for n in self.services if self.target(n) == "redis-tunnel"]
        self.assertEqual(2, len(tunnels))
        with open(path("deploy", "stunnel", "redis-client.conf"), encoding="utf-8") as f:
            conf = f.read()
        for key in ("CAfile", "cert", "key"):
            mounted = re.search(rf"^{key} = (\S+)$", conf, re.M).group(1)
            for name in tunnels:
                self.secret_file(name, mounted)
        self.assertRegex(conf, r"(?m)^client = yes$")
        self.assertRegex(conf, r"(?m)^accept = 127\.0\.0\.1:\d+$", "plaintext side on loopback")


if __name__ == "__main__":
    checks.main()
